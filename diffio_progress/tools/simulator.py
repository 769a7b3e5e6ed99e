"""Drive one generation through its stages with the writer, as real workers would."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass

from google.cloud import firestore

from diffio_progress.core import paths
from diffio_progress.core.stages import (
    AUDIO_STAGES,
    COMPLETE,
    FAILED,
    PRE_PROCESSING,
    VIDEO_STAGES,
)
from diffio_progress.worker.generation_writer import GenerationWriter
from diffio_progress.worker.pacing import DEFAULT_INTERVAL_SECONDS
from diffio_progress.worker.stage_writer import StageWriter

from .executions import Executions, NoExecutions

# What each stage's worker says while it runs, in order.
STEP_MESSAGES = {
    "preProcessing": ("Downloading upload", "Decoding audio", "Normalising level", "Encoding MP3"),
    "inference": ("Loading model", "Processing audio", "Restoring speech", "Writing output"),
    "restoredVideo": ("Fetching restored audio", "Muxing video", "Encoding video", "Uploading"),
}
KILLED = "killed"
SILENT = "exited without a result"
DEFAULT_ERROR = "Inference failed"
DEFAULT_DETAILS = "Worker exited with code 137: out of memory while processing audio"
QUEUE_MESSAGE = "Waiting for a GPU"
NEXT_MESSAGE = "Next in line for a GPU"


@dataclass(frozen=True)
class Pace:
    """How fast a simulated generation moves: ``steps`` updates a stage, ``step_seconds`` apart.

    The default takes about 35 s for a video generation: slow enough to watch,
    short enough to finish while you do. The first ``queued_seconds`` are spent
    in the dispatcher's queue, at ``queue_steps`` falling positions (0: none).
    """

    step_seconds: float = 1.0
    steps: int = 10
    queued_seconds: float = 3.0
    queue_steps: int = 3

    @classmethod
    def scaled(cls, step_seconds: float, steps: int = 10) -> Pace:
        """A pace whose queued wait scales with its steps (three steps' worth)."""
        return cls(step_seconds=step_seconds, steps=steps, queued_seconds=3 * step_seconds)


@dataclass(frozen=True)
class Failure:
    """Fail ``stage`` halfway through, with this error and details.

    ``killed``: the worker dies without a word instead (an OOM kill); only its
    execution says so, and the reaper writes the stage failed. ``silent``: the
    worker exits cleanly without writing its result (execution ``SUCCEEDED``,
    stage left running); the reaper fails that stage too.
    """

    stage: str
    error: str = DEFAULT_ERROR
    details: str | None = DEFAULT_DETAILS
    killed: bool = False
    silent: bool = False


class Stopped(Exception):
    """The simulation was asked to stop before it finished."""


def simulate(
    db: firestore.Client,
    api_project_id: str,
    generation_id: str,
    *,
    has_video: bool,
    pace: Pace = Pace(),
    failure: Failure | None = None,
    stop: threading.Event | None = None,
    on_change: Callable[[str, str], None] | None = None,
    executions: Executions | None = None,
    progress_interval: float = DEFAULT_INTERVAL_SECONDS,
) -> str:
    """Run the generation's stages in order: ``complete``, ``failed``, ``KILLED`` or ``SILENT``.

    Every stage is queued first, as a dispatcher would, and the generation
    waits in the queue at falling positions until a worker takes it. Its
    transcription is pending from the start and available once preprocessing
    completes (unavailable if the generation fails before). When preprocessing
    completes the project's ``audioOriginalMp3Ready`` is set, as the upload
    service does. ``stop`` ends the run early by raising ``Stopped``.
    With ``executions``, each stage runs as a Cloud Run execution whose state
    is reported along (before the stage document names it).
    """
    stages = VIDEO_STAGES if has_video else AUDIO_STAGES
    executions = executions or NoExecutions()
    if failure is not None and failure.stage not in stages:
        raise ValueError(f"{failure.stage} is not a stage of this generation")
    unreported = failure is not None and (failure.killed or failure.silent)
    if failure is not None and unreported and executions.name(failure.stage) is None:
        raise ValueError("a worker can only be killed when its stage has an execution")
    stop = stop or threading.Event()
    report = on_change or (lambda stage, status: None)
    run_id = secrets.token_hex(3)
    names = {stage: executions.name(stage) for stage in stages}
    writers = {
        stage: StageWriter(
            db,
            api_project_id,
            generation_id,
            stage,
            # A Cloud Run worker's jobId is its execution's id (StageWriter.from_environment).
            job_id=name.rsplit("/", 1)[-1] if name else f"{stage}-{run_id}",
            execution_name=name,
            min_interval_seconds=progress_interval,
        )
        for stage, name in names.items()
    }

    def pause(seconds: float) -> None:
        if stop.wait(seconds):
            raise Stopped

    generation = GenerationWriter(db, api_project_id, generation_id)
    for stage, writer in writers.items():
        executions.report(stage, "PENDING")
        writer.start(job_state="PENDING", message="Queued")
    generation.transcription("pending")
    report("transcription", "pending")
    wait_in_queue(generation, pace, pause, report)
    for stage, writer in writers.items():
        messages = STEP_MESSAGES[stage]
        executions.report(stage, "RUNNING")
        writer.start(message=messages[0])
        report(stage, "running")
        for step in range(1, pace.steps):
            pause(pace.step_seconds)
            if failure is not None and failure.stage == stage and step >= pace.steps // 2:
                if failure.killed:
                    executions.kill(stage)
                    report(stage, KILLED)
                    return KILLED
                if failure.silent:
                    executions.report(stage, "SUCCEEDED")  # exit 0, its result never written
                    report(stage, SILENT)
                    return SILENT
                writer.fail(failure.error, failure.details)
                executions.report(stage, "FAILED", failure.details)
                report(stage, FAILED)
                if generation.transcription("unavailable"):
                    report("transcription", "unavailable")
                return FAILED
            message = messages[step * len(messages) // pace.steps]
            writer.progress(round(100 * step / pace.steps), message)
        pause(pace.step_seconds)
        writer.complete()
        executions.report(stage, "SUCCEEDED")
        report(stage, COMPLETE)
        if stage == PRE_PROCESSING:
            db.document(*paths.project(api_project_id)).update({"audioOriginalMp3Ready": True})
            # Diffio 4.6 transcribes the recording before restoration starts.
            generation.transcription("available")
            report("transcription", "available")
    return COMPLETE


def wait_in_queue(
    generation: GenerationWriter,
    pace: Pace,
    pause: Callable[[float], None],
    report: Callable[[str, str], None],
) -> None:
    """The dispatcher's part: falling queue positions, then the queue cleared as a worker takes it.

    With no ``queue_steps`` the generation waits ``queued_seconds`` without a queue.
    """
    if pace.queue_steps <= 0:
        pause(pace.queued_seconds)
        return
    for position in range(pace.queue_steps - 1, -1, -1):
        generation.queue(position, QUEUE_MESSAGE if position else NEXT_MESSAGE)
        report("queue", f"position {position}")
        pause(pace.queued_seconds / pace.queue_steps)
    generation.dequeue()
    report("queue", "taken by a worker")


def new_generation_id() -> str:
    return "gen-" + secrets.token_hex(4)


def ensure_generation(
    db: firestore.Client,
    api_project_id: str,
    generation_id: str,
    *,
    user_id: str,
    has_video: bool,
    api_key_id: str | None = None,
) -> tuple[str, bool]:
    """Create the project (if missing) and generation documents (contract §2, §3).

    ``api_key_id`` is the ``keyId`` the generation is created under (its events go there).

    Returns the owner and media type of the project as stored, which win over
    the arguments for a project that already exists.
    """
    project_ref = db.document(*paths.project(api_project_id))
    snapshot = project_ref.get()
    if snapshot.exists:
        project = snapshot.to_dict() or {}
        user_id = str(project.get("userId") or user_id)
        has_video = project.get("hasVideo") is True
    else:
        project_ref.set({"userId": user_id, "hasVideo": has_video})
    generation_ref = db.document(*paths.generation(api_project_id, generation_id))
    if not generation_ref.get().exists:
        generation: dict[str, object] = {
            "generationId": generation_id,
            "apiProjectId": api_project_id,
            "userId": user_id,
            "modelKey": "diffio-4.6-flash",
            "createdAt": firestore.SERVER_TIMESTAMP,
            "updatedAt": firestore.SERVER_TIMESTAMP,
        }
        if api_key_id is not None:
            generation["apiKeyId"] = api_key_id
        generation_ref.set(generation)
    return user_id, has_video
