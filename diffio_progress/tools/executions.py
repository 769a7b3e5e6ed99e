"""Simulated Cloud Run executions: each simulated stage runs as one the stand-in knows."""

from __future__ import annotations

import secrets
from typing import Protocol

from .cloud_run_standin import set_state

# What an OOM kill looks like in an execution's Completed condition.
KILLED_MESSAGE = "Task {job}-task0 exited with code 137: the container ran out of memory"
_JOBS = {"preProcessing": "preprocessing", "inference": "inference", "restoredVideo": "video"}


class StandInUnavailable(RuntimeError):
    """The stand-in did not answer a state change."""


class Executions(Protocol):
    """Where a simulated stage's execution lives, and how its state is reported."""

    def name(self, stage: str) -> str | None: ...

    def report(self, stage: str, state: str, message: str | None = None) -> None: ...

    def kill(self, stage: str) -> None: ...


class NoExecutions:
    """Stages without an execution: nothing for the reaper or the live lookup to ask about."""

    def name(self, stage: str) -> str | None:
        return None

    def report(self, stage: str, state: str, message: str | None = None) -> None:
        pass

    def kill(self, stage: str) -> None:
        raise ValueError("a worker can only be killed when its stage has an execution")


class StandInExecutions:
    """One execution per stage of one simulated run, its state set in the stand-in.

    ``report`` raises ``StandInUnavailable`` when the stand-in does not answer.
    """

    def __init__(self, host_port: str, project: str, region: str = "us-central1") -> None:
        self.host_port = host_port
        self._prefix = f"projects/{project}/locations/{region}/jobs"
        self._run = secrets.token_hex(3)

    def name(self, stage: str) -> str:
        job = _JOBS[stage]
        return f"{self._prefix}/{job}/executions/{job}-{self._run}"

    def report(self, stage: str, state: str, message: str | None = None) -> None:
        try:
            set_state(self.host_port, self.name(stage), state, message)
        except OSError as error:
            raise StandInUnavailable(
                f"The Cloud Run stand-in at {self.host_port} does not answer ({error})."
            ) from None

    def kill(self, stage: str) -> None:
        """The worker is gone without a word: Cloud Run reports its execution FAILED."""
        self.report(stage, "FAILED", KILLED_MESSAGE.format(job=f"{_JOBS[stage]}-{self._run}"))
