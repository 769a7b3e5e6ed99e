"""Progress-only updates at most once per interval; everything else goes out at once.

A worker may report progress many times a second; each write costs a Firestore
transaction and wakes the event function. A progress-only update (same status,
no new message, below 100) within ``interval`` of this writer's last write is
held, and the latest held one is written when the interval is up, or just
before the next write that does not carry as much progress. A status change,
a new message and the final 100 are written at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from diffio_progress.core.job_updates import Change, Complete, Progress, Start

PROGRESS_MIN_INTERVAL_SECONDS = "PROGRESS_MIN_INTERVAL_SECONDS"
DEFAULT_INTERVAL_SECONDS = 2.0


class Pacer:
    """Paces one writer's updates; ``write`` applies one change. Safe across threads."""

    def __init__(
        self,
        interval: float,
        write: Callable[[Change], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self._write = write
        self._clock = clock
        self._lock = threading.RLock()
        self._running = False  # this writer's last write left the stage running
        self._message: str | None = None
        self._percent = 0.0
        self._last: float | None = None
        self._held: Progress | None = None
        self._timer: threading.Timer | None = None
        self.writes = 0  # changes written to Firestore (whether or not they applied)

    def apply(self, change: Change) -> bool:
        """Write ``change`` now, or hold it if it is a progress-only update that may wait.

        A held update returns ``True``; one behind this writer's own last
        progress returns ``False`` at once (Firestore would refuse it). An
        interval of 0 writes every update.
        """
        with self._lock:
            if self.interval > 0 and isinstance(change, Progress) and self._progress_only(change):
                if change.percent < self._percent:
                    return False
                assert self._last is not None
                due = self._last + self.interval
                if self._clock() < due:
                    self._held = change
                    if self._timer is None:
                        self._timer = threading.Timer(due - self._clock(), self.flush)
                        self._timer.daemon = True
                        self._timer.start()
                    return True
            held = self._held
            self._drop_held()
            if held is not None and not _covers(change, held):
                self._send(held)
            return self._send(change)

    def flush(self) -> None:
        """Write the held update, if any (the timer calls this when it is due)."""
        with self._lock:
            held, self._held, self._timer = self._held, None, None
            if held is not None:
                self._send(held)

    def _progress_only(self, change: Progress) -> bool:
        same_message = change.message is None or change.message == self._message
        return self._running and self._last is not None and same_message and change.percent < 100

    def _drop_held(self) -> None:
        self._held = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _send(self, change: Change) -> bool:
        wrote = self._write(change)
        self.writes += 1
        self._last = self._clock()
        if isinstance(change, Progress):
            self._running = wrote or self._running
            if wrote:
                self._percent = max(self._percent, change.percent)
                if change.message is not None:
                    self._message = change.message
        elif isinstance(change, Start):
            self._running = wrote and change.job_state == "RUNNING"
            self._message = change.message if wrote else self._message
        else:
            self._running = False
        return wrote


def _covers(change: Change, held: Progress) -> bool:
    """Whether writing ``change`` makes the held update needless (it sets as much progress)."""
    return isinstance(change, Complete) or (
        isinstance(change, Progress) and change.percent >= held.percent
    )
