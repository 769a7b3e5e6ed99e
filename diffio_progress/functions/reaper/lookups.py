"""The reaper's Cloud Run lookup: a state or a reason for each execution, in order, in time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait

from ..cloud_run import CloudRunExecutions, LookupFailure, LookupResult
from ..config import Settings

# What the reaper asks with: execution names in, one result each for a prefix of them out.
LookupInOrder = Callable[[Sequence[str]], list[LookupResult]]


class ReaperLookup:
    """Looks up executions in order, as many as can start within one deadline.

    Warns about nothing: the reaper names the job document of each failure itself.
    """

    def __init__(self, executions: CloudRunExecutions) -> None:
        self.executions = executions

    @classmethod
    def from_settings(cls, settings: Settings) -> ReaperLookup:
        return cls(CloudRunExecutions.from_settings(settings))

    def __call__(self, names: Sequence[str]) -> list[LookupResult]:
        """Results for the first of ``names``, in order: as many as could start in time.

        Lookups start in order, at most ``workers`` at once, until the deadline
        (the first always starts). Each one started runs to its end, its own
        deadline at most, so every result is a state or a failure and the call
        returns within two deadlines. What never started is left out, not
        queued behind: the caller goes on from there next time.
        """
        deadline = self.executions.deadline
        stop_starting = time.monotonic() + deadline
        slots = threading.BoundedSemaphore(self.executions.workers)
        futures: list[Future[LookupResult]] = []
        for name in names:
            known = self.executions.known(name)
            if known is not None:
                futures.append(_resolved(known))
                continue
            # The first always starts, so every call gets somewhere.
            wait_for = max(stop_starting - time.monotonic(), 0) if futures else None
            if wait_for == 0 or not slots.acquire(timeout=wait_for):
                break
            if futures and time.monotonic() >= stop_starting:
                slots.release()  # a slot freed just as the deadline passed: too late to start
                break
            future = self.executions.fetch(name)
            future.add_done_callback(lambda _: slots.release())
            futures.append(future)
        # Every call ends at its own deadline; the grace covers a server trickling bytes.
        wait(futures, timeout=max(stop_starting + deadline + 1 - time.monotonic(), 0))
        late = LookupFailure(f"no answer within {deadline:g} s")
        return [f.result() if f.done() else late for f in futures]


def _resolved(result: LookupResult) -> Future[LookupResult]:
    future: Future[LookupResult] = Future()
    future.set_result(result)
    return future
