"""The poll's Cloud Run lookup: live states for its stages, as many as arrive in time."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from concurrent.futures import Future, wait

from diffio_progress.core.stages import LiveExecution

from ..cloud_run import CloudRunExecutions, LookupFailure, LookupResult
from ..config import Settings

log = logging.getLogger(__name__)


def warn_failed_lookup(name: str, failure: LookupFailure) -> None:
    """Once per failed call (failures are cached): the poll reports the stored state instead."""
    log.warning(
        "Cloud Run lookup of %s failed (%s); reporting the stored state",
        name,
        failure.reason,
        extra={"fields": {"executionName": name}},
    )


class PollLookup:
    """stage -> execution name in, stage -> live state out, for the states learnt in time.

    The response waits for Cloud Run one deadline at most; a call still running
    then finishes in the background and fills the cache for the next poll. An
    execution whose last call failed is not asked again until that is forgotten.
    """

    def __init__(self, executions: CloudRunExecutions) -> None:
        self.executions = executions

    @classmethod
    def from_settings(cls, settings: Settings) -> PollLookup:
        return cls(CloudRunExecutions.from_settings(settings, on_failure=warn_failed_lookup))

    def __call__(self, executions: Mapping[str, str]) -> dict[str, LiveExecution]:
        """Live states for the stages answered within the deadline; the rest are left out."""
        ends = time.monotonic() + self.executions.deadline
        known: dict[str, LiveExecution] = {}
        waiting: dict[str, Future[LookupResult]] = {}
        for stage, name in executions.items():
            cached = self.executions.known(name)
            if isinstance(cached, LiveExecution):
                known[stage] = cached
            elif cached is None:
                waiting[stage] = self.executions.fetch(name)
        if waiting:
            wait(set(waiting.values()), timeout=max(ends - time.monotonic(), 0))
            for stage, future in waiting.items():
                if future.done() and isinstance(result := future.result(), LiveExecution):
                    known[stage] = result
        return known
