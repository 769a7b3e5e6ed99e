"""The worker side of the contract: a Cloud Run job reports its stage (contract §4).

    writer = StageWriter.from_environment("proj-123", "gen-123", "inference")
    writer.start(message="Loading model")
    writer.progress(45, "Processing audio")
    writer.complete()            # or writer.fail("Inference failed", "CUDA out of memory")

Progress-only updates are paced (``pacing.py``): at most one per
``PROGRESS_MIN_INTERVAL_SECONDS`` (default 2), the latest written when due.
Every write is a Firestore transaction that reads the stage first, so progress
never moves backwards and a finished stage (complete or failed) is never
overwritten by a late or duplicate update, even with several writers racing
(the reaper of dead workers writes through it too). The rule itself is pure:
``core/job_updates.py``.
"""

from __future__ import annotations

import math
import os
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from google.cloud import firestore

from diffio_progress.core import paths
from diffio_progress.core.job_updates import (
    START_STATES,
    Change,
    Complete,
    ExecutionEnded,
    Fail,
    Progress,
    Start,
    next_document,
)
from diffio_progress.core.stages import ALL_STAGES, JobState, LiveExecution

from .contention import with_patience
from .pacing import DEFAULT_INTERVAL_SECONDS, PROGRESS_MIN_INTERVAL_SECONDS, Pacer

GOOGLE_CLOUD_PROJECT = "GOOGLE_CLOUD_PROJECT"
# Cloud Run jobs set these in every task's environment.
CLOUD_RUN_JOB = "CLOUD_RUN_JOB"
CLOUD_RUN_EXECUTION = "CLOUD_RUN_EXECUTION"
# Cloud Run does not set a region variable; these let a deployment name it,
# otherwise the metadata server is asked.
REGION_VARIABLES = ("CLOUD_RUN_REGION", "GOOGLE_CLOUD_REGION")
METADATA_HOST = "GCE_METADATA_HOST"


def _check_percent(percent: float) -> float:
    if isinstance(percent, bool) or not isinstance(percent, (int, float)):
        raise TypeError("percent must be a number")
    if not math.isfinite(percent) or not 0 <= percent <= 100:
        raise ValueError(f"percent must be between 0 and 100, got {percent!r}")
    return percent


@firestore.transactional
def _apply(transaction: Any, ref: Any, change: Change) -> bool:
    snapshot = ref.get(transaction=transaction)
    current = (snapshot.to_dict() or {}) if snapshot.exists else None
    document = next_document(current, change)
    if document is None:
        return False
    document["updatedAt"] = firestore.SERVER_TIMESTAMP
    # merge: fields other services keep on the document survive.
    transaction.set(ref, document, merge=True)
    return True


class StageWriter:
    """Reports one stage of one generation; each method returns whether it wrote.

    ``False`` means the update was refused: the stage had already finished,
    or the progress was behind what is stored. Safe to share across threads.
    """

    def __init__(
        self,
        db: firestore.Client,
        api_project_id: str,
        generation_id: str,
        stage: str,
        *,
        job_id: str | None = None,
        execution_name: str | None = None,
        max_attempts: int = 20,
        patience_seconds: float = 60.0,
        min_interval_seconds: float = DEFAULT_INTERVAL_SECONDS,
    ) -> None:
        if stage not in ALL_STAGES:
            raise ValueError(f"stage must be one of {', '.join(ALL_STAGES)}, got {stage!r}")
        self.db = db
        self.ref = db.document(*paths.job(api_project_id, generation_id, stage))
        self.stage = stage
        self.job_id = job_id
        self.execution_name = execution_name
        # Racing writers abort each other's transactions; retry generously, and after
        # max_attempts lost in a row keep trying, with pauses, for patience_seconds.
        self.max_attempts = max_attempts
        self.patience_seconds = patience_seconds
        self.pacer = Pacer(min_interval_seconds, self._transact)

    @classmethod
    def from_environment(
        cls,
        api_project_id: str,
        generation_id: str,
        stage: str,
        *,
        db: firestore.Client | None = None,
        environ: Mapping[str, str] | None = None,
        metadata: Callable[[str], str | None] | None = None,
    ) -> StageWriter:
        """A writer for a Cloud Run job task, with ``jobId`` and ``executionName`` filled in.

        ``jobId`` is the execution's id (``CLOUD_RUN_EXECUTION``); the
        execution's resource name needs the project (``GOOGLE_CLOUD_PROJECT``)
        and region (``CLOUD_RUN_REGION``), and asks the metadata server for
        whichever is unset. Outside Cloud Run both are left empty.
        """
        env = os.environ if environ is None else environ
        ask = metadata or (lambda path: read_metadata(path, env))
        project = env.get(GOOGLE_CLOUD_PROJECT) or None
        execution = env.get(CLOUD_RUN_EXECUTION) or None
        execution_name = None
        if execution and env.get(CLOUD_RUN_JOB):
            project = project or ask("project/project-id")
            region = next((env[v] for v in REGION_VARIABLES if env.get(v)), None)
            if region is None:
                # "projects/123456789/regions/us-central1"
                answer = ask("instance/region")
                region = answer.rsplit("/", 1)[-1] if answer else None
            if project and region:
                execution_name = (
                    f"projects/{project}/locations/{region}/jobs/{env[CLOUD_RUN_JOB]}"
                    f"/executions/{execution}"
                )
        client = db or firestore.Client(project=project)
        interval = env.get(PROGRESS_MIN_INTERVAL_SECONDS) or DEFAULT_INTERVAL_SECONDS
        return cls(
            client,
            api_project_id,
            generation_id,
            stage,
            job_id=execution,
            execution_name=execution_name,
            min_interval_seconds=float(interval),
        )

    def start(
        self,
        job_id: str | None = None,
        job_state: str = JobState.RUNNING,
        execution_name: str | None = None,
        message: str | None = None,
    ) -> bool:
        """Mark the stage started (``RUNNING``) or queued (``PENDING``)."""
        if job_state not in START_STATES:
            raise ValueError(f"job_state must be PENDING or RUNNING, got {job_state!r}")
        return self._write(
            Start(
                job_id=job_id or self.job_id,
                job_state=job_state,
                execution_name=execution_name or self.execution_name,
                message=message,
            )
        )

    def progress(self, percent: float, message: str | None = None) -> bool:
        """Report ``percent`` (0..100) done; a value behind the stored one is ignored.

        Progress alone, within the interval of the last write, is held and
        written when due (``True``); a newer update or any other write replaces it.
        """
        return self._write(Progress(_check_percent(percent), message))

    def complete(self, message: str | None = None) -> bool:
        return self._write(Complete(message))

    def fail(self, error: str, details: str | None = None, cancelled: bool = False) -> bool:
        """Mark the stage failed with a short ``error`` and optional ``details``."""
        return self._write(
            Fail(error, details, JobState.CANCELLED if cancelled else JobState.FAILED)
        )

    def execution_ended(self, execution_name: str, live: LiveExecution) -> bool:
        """The reaper's write: fail the stage because its execution ``execution_name`` died.

        Refused when the stage already finished (a worker's ``complete`` wins), when
        it now names another execution, or when ``live`` has not ended
        (``FAILED``, ``CANCELLED``, or ``SUCCEEDED`` without a result).
        """
        return self._write(ExecutionEnded(execution_name, live))

    def read(self) -> dict[str, Any] | None:
        snapshot = self.ref.get()
        return (snapshot.to_dict() or {}) if snapshot.exists else None

    def flush(self) -> None:
        """Write a held progress update now (a worker about to exit without finishing)."""
        self.pacer.flush()

    def _write(self, change: Change) -> bool:
        return self.pacer.apply(change)

    def _transact(self, change: Change) -> bool:
        def attempt() -> bool:
            transaction = self.db.transaction(max_attempts=self.max_attempts)
            return bool(_apply(transaction, self.ref, change))

        return with_patience(attempt, self.patience_seconds)


def read_metadata(path: str, environ: Mapping[str, str] | None = None) -> str | None:
    """One value from the metadata server (present on Cloud Run), or ``None``."""
    env = os.environ if environ is None else environ
    host = env.get(METADATA_HOST) or "metadata.google.internal"
    request = urllib.request.Request(
        f"http://{host}/computeMetadata/v1/{path}", headers={"Metadata-Flavor": "Google"}
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return str(response.read().decode().strip()) or None
    except OSError:
        return None
