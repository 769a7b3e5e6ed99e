"""Who may cost a Firestore read now: a rate limit per key, and a bound on refused keys."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import LRUCache, TTLCache

from diffio_progress.core.errors import ApiError
from diffio_progress.core.token_bucket import Bucket, available, take

from .config import Settings

_BUCKETS = 100_000
_REMEMBERED = 100_000
# A key that authorized recently is never held back by its address's refused-key budget.
_KNOWN_GOOD_SECONDS = 600.0

KEY_POLICY = "key"
REFUSED_KEYS_POLICY = "refused-keys"


@dataclass(frozen=True)
class Quota:
    """One policy's state after a request, as the IETF RateLimit header fields tell it."""

    policy: str
    limit: int
    window: int
    remaining: int
    reset: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Policy": f'"{self.policy}";q={self.limit};w={self.window}',
            "RateLimit": f'"{self.policy}";r={self.remaining};t={self.reset}',
        }


def rate_limited(quota: Quota, retry_after: int, message: str) -> ApiError:
    """429 with ``Retry-After`` in whole seconds and the RateLimit fields; no read was made."""
    headers = {"Retry-After": str(retry_after), **quota.headers()}
    return ApiError(429, "rate_limited", message, headers)


class _Limiter:
    """Token buckets by name (bounded LRU), updated atomically."""

    def __init__(self, policy: str, rate: float, burst: float, clock: Callable[[], float]) -> None:
        self.policy, self.rate, self.burst, self._clock = policy, rate, burst, clock
        self.enabled = rate > 0
        self._buckets: LRUCache[str, Bucket] = LRUCache(_BUCKETS)
        self._lock = threading.Lock()

    def quota(self, remaining: int, reset: int) -> Quota:
        window = max(1, math.ceil(self.burst / self.rate))
        return Quota(self.policy, math.floor(self.burst), window, remaining, reset)

    def take(self, name: str) -> tuple[bool, Quota, int]:
        """Spend one token of ``name``: (allowed, quota after, seconds until the next token)."""
        with self._lock:
            decision = take(self._buckets.get(name), self._clock(), self.rate, self.burst)
            self._buckets[name] = decision.bucket
        reset = decision.reset if decision.allowed else decision.retry_after
        return decision.allowed, self.quota(decision.remaining, reset), decision.retry_after

    def exhausted(self, name: str) -> tuple[bool, Quota]:
        """Whether ``name`` has no whole token left, without spending one."""
        with self._lock:
            tokens = available(self._buckets.get(name), self._clock(), self.rate, self.burst)
        wait = max(1, math.ceil((1 - tokens) / self.rate)) if tokens < 1 else 0
        return tokens < 1, self.quota(math.floor(tokens), wait)


class Admission:
    """Checks made before a poll may read: none of them reads Firestore.

    - Each key hash gets a token bucket (``KEY_RATE_LIMIT_*``), so one key in a
      tight loop costs at most its rate in reads, per instance.
    - A key that was refused (401 or 403) is refused again from memory for
      ``REFUSED_KEY_CACHE_SECONDS``: the same bad key in a loop costs one read
      per that while.
    - Each client address may cause ``REFUSED_KEYS_PER_ADDRESS_PER_MINUTE``
      refused-key lookups; past that, its keys not seen to work lately are
      answered 429 without a read, so a stream of made-up keys is bounded too.
    """

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self._keys = _Limiter(
            KEY_POLICY, settings.key_rate_limit_per_second, settings.key_rate_limit_burst, clock
        )
        per_minute = settings.refused_keys_per_address_per_minute
        self._addresses = _Limiter(REFUSED_KEYS_POLICY, per_minute / 60, per_minute, clock)
        ttl = settings.refused_key_cache_seconds
        self._refusals: TTLCache[str, ApiError] | None = (
            TTLCache(_REMEMBERED, ttl, timer=clock) if ttl > 0 else None
        )
        self._known_good: TTLCache[str, bool] = TTLCache(
            _REMEMBERED, _KNOWN_GOOD_SECONDS, timer=clock
        )
        self._lock = threading.Lock()

    def admit(self, key_hash: str, address: str | None) -> Quota | None:
        """The key's quota after this request; raises 429 or a remembered refusal instead."""
        quota = None
        if self._keys.enabled:
            allowed, quota, retry_after = self._keys.take(key_hash)
            if not allowed:
                raise rate_limited(
                    quota, retry_after, "Too many requests for this API key; retry later"
                )
        with self._lock:
            refusal = self._refusals.get(key_hash) if self._refusals is not None else None
            known_good = key_hash in self._known_good
        if refusal is not None:
            raise ApiError(refusal.status, refusal.code, refusal.message, refusal.headers)
        if self._addresses.enabled and not known_good and address is not None:
            exhausted, address_quota = self._addresses.exhausted(address)
            if exhausted:
                raise rate_limited(
                    address_quota,
                    address_quota.reset,
                    "Too many requests with unknown API keys from this address; retry later",
                )
        return quota

    def refused(self, key_hash: str, address: str | None, error: ApiError) -> None:
        """A lookup found the key unusable: remember it, and charge the caller's address."""
        with self._lock:
            if self._refusals is not None:
                self._refusals[key_hash] = error
            self._known_good.pop(key_hash, None)
        if self._addresses.enabled and address is not None:
            self._addresses.take(address)

    def accepted(self, key_hash: str) -> None:
        with self._lock:
            self._known_good[key_hash] = True
