"""A monotonic clock the tests move by hand, for TTLs, rate limits and recheck bounds."""

from __future__ import annotations


class Clock:
    """Seconds that pass only when a test says so (``clock.seconds += 10``)."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds
