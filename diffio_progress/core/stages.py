"""The stages of a generation: job documents read as stages, the live Cloud Run effect, rule 7.

Rules 3-7 of the data contract on plain data. No I/O, no clock, no environment.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

log = logging.getLogger(__name__)

PRE_PROCESSING = "preProcessing"
INFERENCE = "inference"
RESTORED_VIDEO = "restoredVideo"
AUDIO_STAGES = (PRE_PROCESSING, INFERENCE)
VIDEO_STAGES = (PRE_PROCESSING, INFERENCE, RESTORED_VIDEO)
ALL_STAGES = VIDEO_STAGES


class StageStatus(StrEnum):
    """A job document's ``status``, and a stage's in the API: the contract's four values."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"


class JobState(StrEnum):
    """A job document's ``jobState``: a Cloud Run execution's state, in capitals."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


# The short names the core uses: in this package they only ever mean a stage status.
PENDING, RUNNING = StageStatus.PENDING, StageStatus.RUNNING
COMPLETE, FAILED = StageStatus.COMPLETE, StageStatus.FAILED
# Only the overall status of a generation (rule 7) is ever "processing".
PROCESSING = "processing"

_STATUS_SYNONYMS: dict[str, StageStatus] = {
    PENDING: PENDING,
    "queued": PENDING,
    "waiting": PENDING,
    RUNNING: RUNNING,
    "processing": RUNNING,
    "in_progress": RUNNING,
    "started": RUNNING,
    COMPLETE: COMPLETE,
    "completed": COMPLETE,
    "succeeded": COMPLETE,
    "success": COMPLETE,
    "done": COMPLETE,
    FAILED: FAILED,
    "error": FAILED,
    "cancelled": FAILED,
    "canceled": FAILED,
}

# Live states that mean the worker is gone and cannot report its own failure.
DEAD_JOB_STATES = frozenset({JobState.FAILED, JobState.CANCELLED})
# An execution in one of these states never changes again.
FINAL_JOB_STATES = frozenset({JobState.SUCCEEDED, *DEAD_JOB_STATES})
# Each segment a resource id: letters, digits, "_", ".", ":" and "-" (a domain-scoped project
# is "example.com:p"), never starting with a dot. The REST client puts the name into the URL
# as it is, and an HTTP client resolves "." and ".." segments ("executions/.." asks for the
# job instead); "?", "#" and "%" would change the URL too.
_SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9._:-]*"
_EXECUTION_NAME = re.compile(
    rf"projects/{_SEGMENT}/locations/{_SEGMENT}/jobs/{_SEGMENT}/executions/{_SEGMENT}"
)


@dataclass(frozen=True)
class Stage:
    """One stage as reported to the client, plus where to look it up live."""

    status: StageStatus = PENDING
    progress: float = 0
    job_id: str | None = None
    job_state: str | None = None
    status_message: str | None = None
    error: str | None = None
    error_details: str | None = None
    execution_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The seven keys of the API's stage object, always all present."""
        return {
            "jobId": self.job_id,
            "jobState": self.job_state,
            "status": self.status,
            "progress": self.progress,
            "statusMessage": self.status_message,
            "error": self.error,
            "errorDetails": self.error_details,
        }


@dataclass(frozen=True)
class LiveExecution:
    """A Cloud Run execution's state, already mapped to a ``jobState``."""

    job_state: JobState
    message: str | None = None


def has_video(project: Mapping[str, Any]) -> bool:
    value = project.get("hasVideo", False)
    if not isinstance(value, bool):
        log.warning("project field hasVideo is not a bool; treating it as false")
        return False
    return value


def stage_names(video: bool) -> tuple[str, ...]:
    """Rule 3: audio projects report two stages, video projects three."""
    return VIDEO_STAGES if video else AUDIO_STAGES


def known_status(value: object) -> StageStatus | None:
    """The API value a stored status means (case and synonyms forgiven), or ``None``."""
    return _STATUS_SYNONYMS.get(value.strip().lower()) if isinstance(value, str) else None


def normalize_status(value: object) -> StageStatus:
    """Map a stored status onto the four API values; unknown means pending."""
    status = known_status(value)
    if status is not None:
        return status
    log.warning("job field status %r is not a known status; reporting pending", value)
    return PENDING


def clamp_progress(value: object) -> float:
    """Rule 4: a number clamped to 0..100; anything else counts as 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if value is not None:
            log.warning("job field progress is not a number; reporting 0")
        return 0
    if not math.isfinite(value):
        return 100 if value == math.inf else 0
    return min(max(value, 0), 100)


def statuses_read_as(*statuses: str) -> tuple[str, ...]:
    """The stored ``status`` values (lower case) that read as one of ``statuses``."""
    return tuple(value for value, status in _STATUS_SYNONYMS.items() if status in statuses)


def is_execution_name(value: object) -> bool:
    """Whether ``value`` is a Cloud Run execution resource name, safe to look up by URL."""
    return isinstance(value, str) and _EXECUTION_NAME.fullmatch(value) is not None


def read_stage(job: Mapping[str, Any] | None) -> Stage:
    """A job document (or ``None``, rule 5) as a stage."""
    if job is None:
        return Stage()
    status = normalize_status(job.get("status"))
    execution_name = text_field(job, "executionName")
    if execution_name is not None and not is_execution_name(execution_name):
        log.warning("job field executionName is not an execution resource name; ignoring it")
        execution_name = None
    return Stage(
        status=status,
        progress=100 if status == COMPLETE else clamp_progress(job.get("progress")),
        job_id=text_field(job, "jobId"),
        job_state=text_field(job, "jobState"),
        status_message=text_field(job, "statusMessage"),
        error=text_field(job, "error"),
        error_details=text_field(job, "errorDetails"),
        execution_name=execution_name,
    )


def build_stages(
    project: Mapping[str, Any], jobs: Mapping[str, Mapping[str, Any] | None]
) -> dict[str, Stage]:
    """Rules 3-6: the project's stages, in order, from its job documents."""
    stages = {name: read_stage(jobs.get(name)) for name in stage_names(has_video(project))}
    if project.get("audioOriginalMp3Ready") is True:
        # Rule 6: the MP3 exists, so preprocessing is done whatever its job says;
        # a stage reported complete carries no error (else clients show a failure).
        stages[PRE_PROCESSING] = replace(
            stages[PRE_PROCESSING], status=COMPLETE, progress=100, error=None, error_details=None
        )
    return stages


def live_lookups(stages: Mapping[str, Stage]) -> dict[str, str]:
    """Stage name to execution name, for stages whose live state could matter.

    Only a stage still ``pending`` or ``running`` can be overtaken by its
    execution's fate; terminal stages are never looked up.
    """
    return {
        name: stage.execution_name
        for name, stage in stages.items()
        if stage.execution_name and stage.status in (PENDING, RUNNING)
    }


def apply_live(stage: Stage, live: LiveExecution | None) -> Stage:
    """The contract's live mapping: the live jobState wins; a dead worker fails the stage."""
    if live is None or stage.status not in (PENDING, RUNNING):
        return stage
    if live.job_state in DEAD_JOB_STATES:
        return replace(
            stage,
            job_state=live.job_state,
            status=FAILED,
            error=stage.error or f"Cloud Run execution {live.job_state.lower()}",
            error_details=stage.error_details or live.message,
        )
    return replace(stage, job_state=live.job_state)


def overall_status(statuses: Iterable[str]) -> str:
    """Rule 7."""
    values = list(statuses)
    if FAILED in values:
        return FAILED
    if all(s == COMPLETE for s in values):
        return COMPLETE
    if all(s == PENDING for s in values):
        return PENDING
    return PROCESSING


def text_field(doc: Mapping[str, Any], key: str, document: str = "job") -> str | None:
    """An optional string field of a ``document``; anything but a string is null (one warning)."""
    value = doc.get(key)
    if value is None or isinstance(value, str):
        return value
    log.warning("%s field %s is not a string; reporting null", document, key)
    return None
