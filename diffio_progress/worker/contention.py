"""A transactional write that keeps losing to concurrent writers tries again after a pause.

The client library retries a transaction that Firestore aborted at once, up
to ``max_attempts`` times, with no pause; while other writers hold the same
document (a stale duplicate worker, the reaper) all of those can lose. A
worker's ``complete()`` must not fail for that: after a jittered, growing
pause the write is tried again, until ``patience`` seconds have passed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# The client library's "Failed to commit transaction in N attempts."
EXHAUSTED = "Failed to commit transaction"
FIRST_PAUSE = 0.05
LONGEST_PAUSE = 2.0


def with_patience(
    write: Callable[[], T],
    patience: float,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> T:
    """``write()``, tried again after a pause while it loses to contention, for ``patience`` s."""
    deadline = monotonic() + patience
    pause = FIRST_PAUSE
    while True:
        try:
            return write()
        except ValueError as error:
            wait = pause * random.uniform(1, 2)  # jitter: racing writers wake apart
            if not str(error).startswith(EXHAUSTED) or monotonic() + wait > deadline:
                raise
        sleep(wait)
        pause = min(pause * 2, LONGEST_PAUSE)
