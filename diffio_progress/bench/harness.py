"""The benchmark's harness: seeded generations on an emulator, functions served on loopback."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from google.cloud import firestore

from diffio_progress.core.auth import hash_api_key
from diffio_progress.tools import emulator
from diffio_progress.tools.processes import (
    NotServing,
    start_function,
    stop_group,
    wait_until_serving,
)

from .load import Poll

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "diffio-progress-bench"
USERS = ("user-a", "user-b", "user-c", "user-d")


@dataclass(frozen=True)
class Generation:
    project_id: str
    generation_id: str
    video: bool
    key: str


def seed(db: firestore.Client, count: int, prefix: str) -> list[Generation]:
    """``count`` generations alternating audio and video, each in its own project and key.

    A key each, as real clients have: the per-key rate limit stays on, as deployed,
    and no key is polled faster than a client polling one generation would.
    """
    now = datetime.now(UTC)
    batch = db.batch()
    made = []
    for i in range(count):
        user, video = USERS[i % len(USERS)], i % 2 == 1
        key = f"bench-key-{prefix}-{i}"
        batch.set(
            db.document("apiKeys", hash_api_key(key)),
            {"userId": user, "status": "active", "permissions": {"read": True}, "keyId": key},
        )
        project_id, generation_id = f"{prefix}-proj-{i}", f"{prefix}-gen-{i}"
        project = db.document("apiProjects", project_id)
        generation = project.collection("generations").document(generation_id)
        batch.set(project, {"userId": user, "hasVideo": video, "audioOriginalMp3Ready": True})
        batch.set(
            generation,
            {"generationId": generation_id, "apiProjectId": project_id, "userId": user},
        )
        jobs = {"preProcessing": ("complete", 100), "inference": ("running", 40)}
        if video:
            jobs["restoredVideo"] = ("pending", 0)
        for stage, (status, progress) in jobs.items():
            batch.set(
                generation.collection("jobs").document(stage),
                {"status": status, "progress": progress, "jobId": f"job-{i}", "updatedAt": now},
            )
        made.append(Generation(project_id, generation_id, video, key))
        if (i + 1) % 50 == 0:
            batch.commit()
            batch = db.batch()
    batch.commit()
    return made


@contextmanager
def served(
    target: str | None, source: Path, env: dict[str, str], cpus: Sequence[int] = ()
) -> Iterator[tuple[str, int]]:
    """functions-framework serving ``target`` (None: the routing table) on a free loopback port;
    yields URL and pid.

    ``cpus`` pins the server (and the worker it forks) to those CPUs.
    """
    port = emulator.free_port()
    process = start_function(
        target,
        source,
        port,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,  # the function's one log line per request, as deployed
        cpus=cpus,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_serving(process, url, 60)
        except NotServing as failed:
            raise RuntimeError(f"functions-framework ({target}) {failed}") from None
        yield url, process.pid
    finally:
        stop_group(process)


def poll_of(url: str, gen: Generation, *, project: bool, floor: bool, key: bool = True) -> Poll:
    body: dict[str, object] = {"generationId": gen.generation_id}
    if project:
        body["apiProjectId"] = gen.project_id
    if floor:
        body["hasVideo"] = gen.video
        body["withoutKey"] = not key
    return Poll(url, json.dumps(body).encode(), gen.key)
