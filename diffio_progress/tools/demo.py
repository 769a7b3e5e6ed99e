"""The demo world `run` seeds: one key, an audio and a video project, generations in every state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from google.cloud import firestore

from diffio_progress.core import paths

from . import keys
from .simulator import new_generation_id

DEMO_USER = "demo-user"
AUDIO_PROJECT = "demo-audio"
VIDEO_PROJECT = "demo-video"


@dataclass(frozen=True)
class Demo:
    key: str
    key_id: str
    live_generation: str
    live_project: str
    generations: tuple[tuple[str, str, str], ...]  # (project, generation, state)


def seed_demo(
    db: firestore.Client, now: datetime, on_key: Callable[[str, str], object] | None = None
) -> Demo:
    """One key, an audio and a video project, generations in every state, and a fresh one.

    ``on_key`` gets the key's ``keyId`` and the key before any generation exists (to
    configure a webhook that sees them all); every generation carries it as ``apiKeyId``.
    """
    minted = keys.create_key(
        db, user_id=DEMO_USER, now=now, label="demo key (run)", webhooks_write=True
    )
    if on_key is not None:
        on_key(minted.key_id, minted.key)
    # One batched commit: the emulator is slow per write while it warms up.
    batch = db.batch()
    job = _job_writer(db, batch)
    batch.set(db.document(*paths.project(AUDIO_PROJECT)), {"userId": DEMO_USER, "hasVideo": False})
    batch.set(db.document(*paths.project(VIDEO_PROJECT)), {"userId": DEMO_USER, "hasVideo": True})
    live = new_generation_id()
    generations = (
        (AUDIO_PROJECT, "gen-audio-pending", "pending"),
        (AUDIO_PROJECT, "gen-audio-complete", "complete"),
        (AUDIO_PROJECT, "gen-audio-failed", "failed"),
        (VIDEO_PROJECT, "gen-video-processing", "processing"),
        (VIDEO_PROJECT, live, "live"),
    )
    # Rule 9's optional fields, as the transcription step and the dispatcher write them.
    extra: dict[str, dict[str, Any]] = {
        "gen-audio-pending": {
            "transcription": {"status": "pending"},
            "queue": {"position": 2, "message": "Waiting for a GPU"},
        },
        "gen-audio-complete": {"transcription": {"status": "available"}},
        "gen-audio-failed": {"transcription": {"status": "available"}},
        "gen-video-processing": {"transcription": {"status": "available"}},
    }
    for project, generation, _ in generations:
        batch.set(
            db.document(*paths.generation(project, generation)),
            {
                "generationId": generation,
                "apiProjectId": project,
                "userId": DEMO_USER,
                "apiKeyId": minted.key_id,
                "modelKey": "diffio-4.6-flash",
                "createdAt": now,
                "updatedAt": now,
                **extra.get(generation, {}),
            },
        )
    done = {"status": "complete", "progress": 100, "jobState": "SUCCEEDED"}
    job(AUDIO_PROJECT, "gen-audio-complete", "preProcessing", jobId="job-pre-1", **done)
    job(AUDIO_PROJECT, "gen-audio-complete", "inference", jobId="job-inf-1", **done)
    job(AUDIO_PROJECT, "gen-audio-failed", "preProcessing", jobId="job-pre-2", **done)
    job(
        AUDIO_PROJECT,
        "gen-audio-failed",
        "inference",
        jobId="job-inf-2",
        status="failed",
        progress=62,
        jobState="FAILED",
        error="Inference failed",
        errorDetails="Worker exited with code 137: out of memory while processing audio",
    )
    job(VIDEO_PROJECT, "gen-video-processing", "preProcessing", jobId="job-pre", **done)
    job(
        VIDEO_PROJECT,
        "gen-video-processing",
        "inference",
        jobId="job-cloud-run-gpu",
        status="running",
        progress=45,
        jobState="RUNNING",
        statusMessage="Processing audio",
    )
    job(
        VIDEO_PROJECT,
        "gen-video-processing",
        "restoredVideo",
        jobId="job-restored",
        status="pending",
        progress=0,
        jobState="PENDING",
        statusMessage="Queued",
    )
    batch.commit()
    return Demo(minted.key, minted.key_id, live, VIDEO_PROJECT, generations)


def _job_writer(db: firestore.Client, batch: Any) -> Callable[..., None]:
    def write(project: str, generation: str, stage: str, **fields: Any) -> None:
        document: dict[str, Any] = dict.fromkeys(
            ("jobId", "jobState", "statusMessage", "error", "errorDetails", "executionName")
        )
        document.update(fields, updatedAt=firestore.SERVER_TIMESTAMP)
        batch.set(db.document(*paths.job(project, generation, stage)), document)

    return write
