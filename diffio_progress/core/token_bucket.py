"""Token-bucket arithmetic for rate limits: pure, with the time passed in."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Bucket:
    """``tokens`` left at ``at`` (seconds on any monotonic clock)."""

    tokens: float
    at: float


@dataclass(frozen=True)
class Decision:
    """The outcome of asking a bucket for one token.

    ``remaining`` is the whole tokens left after this request; ``retry_after``
    the whole seconds (at least 1) until a refused request would be admitted;
    ``reset`` the whole seconds until the bucket is full again.
    """

    allowed: bool
    bucket: Bucket
    remaining: int
    retry_after: int
    reset: int


def available(bucket: Bucket | None, now: float, rate: float, burst: float) -> float:
    """Tokens in ``bucket`` at ``now``: a new caller (``None``) has a full bucket."""
    if bucket is None:
        return burst
    return min(burst, bucket.tokens + max(now - bucket.at, 0) * rate)


def take(bucket: Bucket | None, now: float, rate: float, burst: float) -> Decision:
    """Refill ``bucket`` at ``rate`` a second up to ``burst``, then take a token if there is one.

    A new caller (``bucket`` None) starts with a full bucket. Time going
    backwards (another thread's older ``now``) refills nothing.
    """
    tokens = available(bucket, now, rate, burst)
    allowed = tokens >= 1
    if allowed:
        tokens -= 1
    return Decision(
        allowed=allowed,
        bucket=Bucket(tokens, now if bucket is None else max(now, bucket.at)),
        remaining=math.floor(tokens),
        retry_after=0 if allowed else max(1, math.ceil((1 - tokens) / rate)),
        reset=math.ceil((burst - tokens) / rate),
    )


def give_back(bucket: Bucket | None, now: float, rate: float, burst: float) -> Bucket | None:
    """``bucket`` with one token taken earlier returned, never above ``burst``.

    A bucket no longer known (``None``: evicted) is full to a new caller anyway.
    """
    if bucket is None:
        return None
    return Bucket(min(burst, available(bucket, now, rate, burst) + 1), max(now, bucket.at))
