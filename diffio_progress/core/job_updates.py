"""What a job document becomes after an update: forward-only and terminal-safe (contract §4).

The pure rule behind the worker-side writer's transaction. The reaper's
``ExecutionEnded`` goes through it too, so a stage that a worker finished is
never overwritten, whoever comes second.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .stages import (
    COMPLETE,
    DEAD_JOB_STATES,
    FAILED,
    PENDING,
    RUNNING,
    JobState,
    LiveExecution,
    StageStatus,
    apply_live,
    clamp_progress,
    normalize_status,
    read_stage,
)

# The job document's fields, all written on every update (contract §4).
JOB_FIELDS = (
    "jobId",
    "jobState",
    "status",
    "progress",
    "statusMessage",
    "error",
    "errorDetails",
    "executionName",
)
_RANK = {PENDING: 0, RUNNING: 1, COMPLETE: 2, FAILED: 2}
START_STATES: dict[str, StageStatus] = {JobState.PENDING: PENDING, JobState.RUNNING: RUNNING}
# A clean exit that left its stage unfinished: nothing will ever report the result.
NO_RESULT = "Worker exited without reporting a result"
# Executions that ended: the reaper ends their stages still pending or running.
REAPED_JOB_STATES = DEAD_JOB_STATES | {JobState.SUCCEEDED}


@dataclass(frozen=True)
class Start:
    job_id: str | None = None
    job_state: str = JobState.RUNNING
    execution_name: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class Progress:
    percent: float
    message: str | None = None


@dataclass(frozen=True)
class Complete:
    message: str | None = None


@dataclass(frozen=True)
class Fail:
    error: str
    details: str | None = None
    job_state: str = JobState.FAILED


@dataclass(frozen=True)
class ExecutionEnded:
    """Cloud Run says the stage's execution ended: the reaper's update for a dead worker.

    Applied only while the stored ``executionName`` is still ``execution_name``
    (the stage has not moved on to another execution), and only for an ended
    state: ``FAILED``, ``CANCELLED`` (the stage then fails as the live mapping
    says) or ``SUCCEEDED`` (the worker exited without reporting its result).
    """

    execution_name: str
    live: LiveExecution


Change = Start | Progress | Complete | Fail | ExecutionEnded


def next_document(current: Mapping[str, Any] | None, change: Change) -> dict[str, Any] | None:
    """The job fields after ``change``, or ``None`` when nothing may be written.

    Nothing is written over a terminal stage, nor for a progress update that
    is behind the stored progress (a late update: its message is stale too).
    A late ``start`` never moves a running stage back to pending.
    """
    stored: dict[str, Any] = dict.fromkeys(JOB_FIELDS)
    if current is not None:
        stored.update((field, current.get(field)) for field in JOB_FIELDS)
    status = normalize_status(stored["status"]) if current is not None else PENDING
    if status in (COMPLETE, FAILED):
        return None
    if isinstance(change, ExecutionEnded):
        if change.live.job_state not in REAPED_JOB_STATES:
            return None
        if current is None or stored["executionName"] != change.execution_name:
            return None
        change = _reaped(current, change.live)
    progress = clamp_progress(stored["progress"])
    document = {**stored, "status": status, "progress": progress, "error": None}
    document["errorDetails"] = None
    if isinstance(change, Start):
        new_status = START_STATES[change.job_state]
        if _RANK[new_status] >= _RANK[status]:
            document.update(
                status=new_status, jobState=change.job_state, statusMessage=change.message
            )
        document["jobId"] = change.job_id or stored["jobId"]
        document["executionName"] = change.execution_name or stored["executionName"]
    elif isinstance(change, Progress):
        percent = clamp_progress(change.percent)
        if percent < progress:
            return None
        document.update(status=RUNNING, jobState=JobState.RUNNING, progress=percent)
        if change.message is not None:
            document["statusMessage"] = change.message
    elif isinstance(change, Complete):
        document.update(
            status=COMPLETE, jobState=JobState.SUCCEEDED, progress=100, statusMessage=change.message
        )
    else:
        document.update(
            status=FAILED,
            jobState=change.job_state,
            error=change.error,
            errorDetails=change.details,
            statusMessage=None,
        )
    return document


def _reaped(current: Mapping[str, Any], live: LiveExecution) -> Fail:
    """The failure the reaper writes for a stage whose execution ended (events contract §5)."""
    stage = read_stage(current)
    if live.job_state == JobState.SUCCEEDED:
        return Fail(stage.error or NO_RESULT, stage.error_details, JobState.SUCCEEDED)
    # The failure a poll with the live lookup shows (apply_live): one rule, two places.
    dead = apply_live(stage, live)
    return Fail(dead.error or "", dead.error_details, live.job_state)
