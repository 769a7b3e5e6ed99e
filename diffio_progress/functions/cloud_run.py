"""Live Cloud Run execution states from the Admin API v2, bounded by one deadline and cached."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar

from google.api_core import exceptions
from google.api_core import retry as retries
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2

from diffio_progress.core.stages import LiveExecution

from .caches import LockedCache
from .config import Settings

log = logging.getLogger(__name__)

SUCCEEDED, FAILED, CANCELLED = "SUCCEEDED", "FAILED", "CANCELLED"
RUNNING, PENDING = "RUNNING", "PENDING"
# An execution in one of these states never changes again.
TERMINAL_STATES = frozenset({SUCCEEDED, FAILED, CANCELLED})

_COMPLETED = "Completed"
_CACHE_SIZE = 10_000
# Fewer than urllib3's 10 pooled connections per host, so concurrent REST calls
# reuse connections instead of opening and discarding extra ones.
_WORKERS = 8
_MAX_REASON_CHARS = 300

T = TypeVar("T")
ClientFactory = Callable[[], run_v2.ExecutionsClient]


@dataclass(frozen=True)
class LookupFailure:
    """Why no state was learnt: a short, key-free reason (``HTTP 403: ...``, a timeout)."""

    reason: str


Outcome = LiveExecution | LookupFailure


def live_execution(execution: run_v2.Execution) -> LiveExecution:
    """The contract's table: an execution's ``Completed`` condition and counts to a jobState.

    The message is the ``Completed`` condition's, which says why an execution failed.
    """
    completed = next((c for c in execution.conditions if c.type_ == _COMPLETED), None)
    state = completed.state if completed is not None else None
    message = (completed.message or None) if completed is not None else None
    if state == run_v2.Condition.State.CONDITION_SUCCEEDED:
        job_state = SUCCEEDED
    elif state == run_v2.Condition.State.CONDITION_FAILED:
        job_state = CANCELLED if execution.cancelled_count > 0 else FAILED
    else:
        job_state = RUNNING if execution.running_count > 0 else PENDING
    return LiveExecution(job_state, message)


def executions_client(emulator_host: str | None = None) -> run_v2.ExecutionsClient:
    """A REST client: Google's endpoint with default credentials, or a plain-HTTP stand-in.

    REST in production too, so the transport the tests exercise is the one deployed.
    """
    if emulator_host:
        return run_v2.ExecutionsClient(
            transport="rest",
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": f"http://{emulator_host}"},
        )
    return run_v2.ExecutionsClient(transport="rest")


class _UntilDeadline:
    """An api_core timeout giving each attempt what is left of one overall deadline.

    api_core's ``TimeToDeadlineTimeout`` hands an attempt the full timeout again
    once less than a second is left, which would let a retry outlive the deadline.
    """

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds

    def __call__(self, func: Callable[..., T]) -> Callable[..., T]:
        ends = time.monotonic() + self._seconds

        @functools.wraps(func)
        def attempt(*args: Any, **kwargs: Any) -> T:
            kwargs["timeout"] = max(ends - time.monotonic(), 0.001)
            return func(*args, **kwargs)

        return attempt


class CloudRunLookup:
    """stage -> execution name in, stage -> live state out, for the states learnt in time.

    One per process (the handler holds it): one lazily created client, one
    bounded thread pool, and the caches. Safe to call from many threads.
    Concurrent lookups of one execution share a single API call.
    """

    def __init__(
        self,
        *,
        deadline: float,
        cache_ttl: float,
        client_factory: ClientFactory = executions_client,
        workers: int = _WORKERS,
        timer: Callable[[], float] = time.monotonic,
        warn: bool = True,
    ) -> None:
        self.deadline = deadline
        self._workers = workers
        # The reaper warns itself, naming the job document rather than the execution.
        self._warn = warn
        self._client_factory = client_factory
        self._client: run_v2.ExecutionsClient | None = None
        self._client_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cloud-run")
        # Terminal states never change: keep them as long as there is room.
        self._final: LockedCache[str, LiveExecution] = LockedCache(_CACHE_SIZE)
        # A running execution moves on; a burst of polls shares one answer for a while.
        self._recent: LockedCache[str, LiveExecution] = LockedCache(_CACHE_SIZE, cache_ttl, timer)
        # A failing API (denied, outage, hang) is asked again only after the same while,
        # so polls stay fast and the warning is not repeated on every poll.
        self._failed: LockedCache[str, LookupFailure] = LockedCache(_CACHE_SIZE, cache_ttl, timer)
        self._in_flight: dict[str, Future[Outcome]] = {}
        self._in_flight_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, warn: bool = True) -> CloudRunLookup:
        return cls(
            deadline=settings.cloud_run_deadline,
            cache_ttl=settings.cloud_run_cache_ttl,
            client_factory=functools.partial(executions_client, settings.cloud_run_emulator_host),
            warn=warn,
        )

    def __call__(self, executions: Mapping[str, str]) -> dict[str, LiveExecution]:
        """Live states for the stages answered within the deadline; the rest are left out."""
        ends = time.monotonic() + self.deadline
        known: dict[str, LiveExecution] = {}
        waiting: dict[str, Future[Outcome]] = {}
        for stage, name in executions.items():
            live = self._final.get(name) or self._recent.get(name)
            if live is not None:
                known[stage] = live
            elif not self._failed.get(name):
                waiting[stage] = self._fetch(name)
        if waiting:
            # The response waits for Cloud Run this long and no longer; a call still
            # running finishes in the background and fills the cache for the next poll.
            wait(set(waiting.values()), timeout=max(ends - time.monotonic(), 0))
            for stage, future in waiting.items():
                if future.done() and isinstance(outcome := future.result(), LiveExecution):
                    known[stage] = outcome
        return known

    def in_order(self, names: Sequence[str]) -> list[Outcome]:
        """Outcomes for the first of ``names``, in order: as many as could start in time.

        Lookups start in order, at most ``workers`` at once, until the deadline
        (the first always starts). Each one started runs to its end, its own
        deadline at most, so every outcome is a state or a failure and the call
        returns within two deadlines. What never started is left out, not
        queued behind: the caller goes on from there next time.
        """
        stop_starting = time.monotonic() + self.deadline
        slots = threading.BoundedSemaphore(self._workers)
        futures: list[Future[Outcome]] = []
        for name in names:
            known = self._known(name)
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
            future = self._fetch(name)
            future.add_done_callback(lambda _: slots.release())
            futures.append(future)
        # Every call ends at its own deadline; the grace covers a server trickling bytes.
        wait(futures, timeout=max(stop_starting + self.deadline + 1 - time.monotonic(), 0))
        late = LookupFailure(f"no answer within {self.deadline:g} s")
        return [f.result() if f.done() else late for f in futures]

    def _known(self, name: str) -> Outcome | None:
        return self._final.get(name) or self._recent.get(name) or self._failed.get(name)

    def _fetch(self, name: str) -> Future[Outcome]:
        with self._in_flight_lock:
            future = self._in_flight.get(name)
            if future is None:
                future = self._pool.submit(self._look_up, name)
                self._in_flight[name] = future
            return future

    def _look_up(self, name: str) -> Outcome:
        """One API call; never raises. Cached before it stops being in flight, so no gap."""
        try:
            live = live_execution(self._get_execution(name))
            (self._final if live.job_state in TERMINAL_STATES else self._recent).set(name, live)
            return live
        except Exception as error:
            failure = LookupFailure(_reason(error, self.deadline))
            self._failed.set(name, failure)
            if self._warn:
                log.warning(
                    "Cloud Run lookup of %s failed (%s); reporting the stored state",
                    name,
                    failure.reason,
                    extra={"fields": {"executionName": name}},
                )
            return failure
        finally:
            with self._in_flight_lock:
                self._in_flight.pop(name, None)

    def _get_execution(self, name: str) -> run_v2.Execution:
        retry = retries.Retry(
            predicate=retries.if_exception_type(
                exceptions.ServiceUnavailable, exceptions.TooManyRequests
            ),
            initial=0.1,
            maximum=0.5,
            multiplier=2,
            timeout=self.deadline,  # no attempt starts after the deadline
        )
        return self._executions().get_execution(
            name=name, retry=retry, timeout=_UntilDeadline(self.deadline)
        )

    def _executions(self) -> run_v2.ExecutionsClient:
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = self._client_factory()
        return self._client


def _resolved(outcome: Outcome) -> Future[Outcome]:
    future: Future[Outcome] = Future()
    future.set_result(outcome)
    return future


def _reason(error: Exception, deadline: float) -> str:
    """A short, key-free description of why a lookup failed, for the warning."""
    if isinstance(error, exceptions.RetryError) and error.cause is not None:
        return f"gave up retrying after {deadline:g} s: {_reason(error.cause, deadline)}"
    if isinstance(error, exceptions.GoogleAPICallError):
        text = f"HTTP {error.code}: {error.message}"
    elif "Timeout" in type(error).__name__:
        text = f"no answer within {deadline:g} s"
    else:
        text = f"{type(error).__name__}: {error}"
    return text[:_MAX_REASON_CHARS]
