"""Cloud Run execution states from the Admin API v2: one client, its deadline, pool and caches."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from google.api_core import exceptions
from google.api_core import retry as retries
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2

from diffio_progress.core.stages import FINAL_JOB_STATES, JobState, LiveExecution

from .caches import LockedCache
from .config import Settings

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


# What one lookup learnt: the execution's state, or why not.
LookupResult = LiveExecution | LookupFailure
# Told of each failed API call (the poll warns; the reaper names the job document itself).
FailureObserver = Callable[[str, LookupFailure], None]


def live_execution(execution: run_v2.Execution) -> LiveExecution:
    """The contract's table: an execution's ``Completed`` condition and counts to a jobState.

    The message is the ``Completed`` condition's, which says why an execution failed.
    """
    completed = next((c for c in execution.conditions if c.type_ == _COMPLETED), None)
    state = completed.state if completed is not None else None
    message = (completed.message or None) if completed is not None else None
    if state == run_v2.Condition.State.CONDITION_SUCCEEDED:
        job_state = JobState.SUCCEEDED
    elif state == run_v2.Condition.State.CONDITION_FAILED:
        job_state = JobState.CANCELLED if execution.cancelled_count > 0 else JobState.FAILED
    else:
        job_state = JobState.RUNNING if execution.running_count > 0 else JobState.PENDING
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


class CloudRunExecutions:
    """Execution states by name: one lazily created client, one bounded pool, the caches.

    One per process; the poll (``progress/live_states.py``) and the reaper
    (``reaper/lookups.py``) each wrap one in their own way of waiting. Safe to
    call from many threads; concurrent lookups of one execution share one call.
    """

    def __init__(
        self,
        *,
        deadline: float,
        cache_ttl: float,
        client_factory: ClientFactory = executions_client,
        workers: int = _WORKERS,
        timer: Callable[[], float] = time.monotonic,
        on_failure: FailureObserver | None = None,
    ) -> None:
        self.deadline = deadline
        self.workers = workers
        self._on_failure = on_failure
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
        self._in_flight: dict[str, Future[LookupResult]] = {}
        self._in_flight_lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, on_failure: FailureObserver | None = None
    ) -> CloudRunExecutions:
        return cls(
            deadline=settings.cloud_run_deadline,
            cache_ttl=settings.cloud_run_cache_ttl,
            client_factory=functools.partial(executions_client, settings.cloud_run_emulator_host),
            on_failure=on_failure,
        )

    def known(self, name: str) -> LookupResult | None:
        """What a recent call learnt about ``name`` (a state, or a failure), if still cached."""
        return self._final.get(name) or self._recent.get(name) or self._failed.get(name)

    def fetch(self, name: str) -> Future[LookupResult]:
        """The call asking about ``name``: the one in flight, else a new one."""
        with self._in_flight_lock:
            future = self._in_flight.get(name)
            if future is None:
                future = self._pool.submit(self._look_up, name)
                self._in_flight[name] = future
            return future

    def _look_up(self, name: str) -> LookupResult:
        """One API call; never raises. Cached before it stops being in flight, so no gap."""
        try:
            live = live_execution(self._get_execution(name))
            (self._final if live.job_state in FINAL_JOB_STATES else self._recent).set(name, live)
            return live
        except Exception as error:
            failure = LookupFailure(_reason(error, self.deadline))
            self._failed.set(name, failure)
            if self._on_failure is not None:
                self._on_failure(name, failure)
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
