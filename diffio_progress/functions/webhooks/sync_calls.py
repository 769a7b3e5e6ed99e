"""Work a caller waits for, bounded: a few calls in flight per target key, one deadline each.

webhooks-api.md §6. ``send_test_event`` sends, ``configure`` resolves a host, and
``resend`` sends, while the caller waits. Each such call takes a slot of its
target key for its whole length (``WEBHOOK_SYNC_PER_KEY`` per instance) and gets
one deadline (``WEBHOOK_SYNC_DEADLINE_SECONDS`` from the slot's start) for every
lookup and send it makes. A call that finds its key's slots full is answered at
once, 429 ``rate_limited`` with ``Retry-After``: no endpoint read, lookup or send.
So one key can hold at most that many of an instance's request threads.

Usage, after the caller's key is checked and before any endpoint read::

    with sync_calls.slot(api_key_id) as deadline:  # a time.monotonic() value
        poster.post(url, body, headers, deadline)
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from diffio_progress.core.errors import RateLimited


class SyncCalls:
    """Slots per target key and the deadline of each; safe to share across threads."""

    def __init__(
        self,
        per_key: int,
        deadline_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_key = per_key
        self.deadline_seconds = deadline_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._deadlines: dict[str, list[float]] = {}  # key -> the deadlines of its calls

    @contextmanager
    def slot(self, api_key_id: str) -> Iterator[float]:
        """Hold one of ``api_key_id``'s slots; yields the call's deadline.

        Raises ``RateLimited`` at once when the key's slots are all held; its
        ``Retry-After`` is when the earliest of them must end (at least 1 s).
        """
        now = self._monotonic()
        deadline = now + self.deadline_seconds
        with self._lock:
            held = self._deadlines.setdefault(api_key_id, [])
            if len(held) >= self.per_key:
                retry_after = max(1, math.ceil(min(held) - now))
                policy = f'"sync";q={self.per_key}'
                raise RateLimited(
                    RateLimited.SYNC_PER_KEY, retry_after, {"RateLimit-Policy": policy}
                )
            held.append(deadline)
        try:
            yield deadline
        finally:
            with self._lock:
                held.remove(deadline)
                if not held:
                    del self._deadlines[api_key_id]

    def in_flight(self, api_key_id: str) -> int:
        """How many calls of ``api_key_id`` hold a slot now."""
        with self._lock:
            return len(self._deadlines.get(api_key_id, ()))
