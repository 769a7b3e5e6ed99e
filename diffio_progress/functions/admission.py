"""Who may cost a Firestore read now: a rate limit per key, and a bound on refused keys."""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import LRUCache, TTLCache

from diffio_progress.core.errors import KeyRefused, RateLimited
from diffio_progress.core.token_bucket import Bucket, give_back, take

from .config import Settings

_BUCKETS = 100_000
_REMEMBERED = 100_000
# A key that authorized recently is never held back by its address's refused-key budget.
_KNOWN_GOOD_SECONDS = 600.0

KEY_POLICY = "key"
REFUSED_KEYS_POLICY = "refused-keys"
# The one budget of every X-Forwarded-For entry that is no address (only a misconfigured
# TRUSTED_PROXY_HOPS lets a client pick the entry: then it still picks no budget of its own).
_NO_ADDRESS = "unparsed"


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


@dataclass(frozen=True)
class Admitted:
    """A request let through to a read: its key's quota, and the address budget it was charged.

    The charge (``budget``, None if none) is given back if the key turns out to work.
    """

    quota: Quota | None
    budget: str | None = None


@dataclass(frozen=True, slots=True)
class _Refusal:
    """A refused key's answer, remembered without the exception (and its traceback's frames)."""

    kind: type[KeyRefused]
    message: str


def address_budget(address: str) -> str:
    """Whose budget an address spends: an IPv4 address its own, an IPv6 address its /64.

    One IPv6 subscriber (or one cloud VM) holds a /64 or more: per address it
    would have 2^64 budgets. An IPv4-mapped IPv6 address is its IPv4 address.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return _NO_ADDRESS
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


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

    def give_back(self, name: str) -> None:
        """Return the token a request of ``name`` took earlier."""
        with self._lock:
            bucket = give_back(self._buckets.get(name), self._clock(), self.rate, self.burst)
            if bucket is not None:
                self._buckets[name] = bucket


class Admission:
    """Checks made before a poll may read: none of them reads Firestore.

    - Each key hash gets a token bucket (``KEY_RATE_LIMIT_*``), so one key in a
      tight loop costs at most its rate in reads, per instance.
    - A key that was refused (401 or 403) is refused again from memory for
      ``REFUSED_KEY_CACHE_SECONDS``: the same bad key in a loop costs one read
      per that while.
    - Each client address (an IPv6 address: its /64) may cause
      ``REFUSED_KEYS_PER_ADDRESS_PER_MINUTE`` lookups of keys not seen to work
      lately; past that, they are answered 429 without a read, so a stream of
      made-up keys is bounded too. The lookup is charged before the read (so
      keys sent at once cannot overdraw it) and given back if the key works.
    """

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self._keys = _Limiter(
            KEY_POLICY, settings.key_rate_limit_per_second, settings.key_rate_limit_burst, clock
        )
        per_minute = settings.refused_keys_per_address_per_minute
        self._addresses = _Limiter(REFUSED_KEYS_POLICY, per_minute / 60, per_minute, clock)
        ttl = settings.refused_key_cache_seconds
        self._refusals: TTLCache[str, _Refusal] | None = (
            TTLCache(_REMEMBERED, ttl, timer=clock) if ttl > 0 else None
        )
        self._known_good: TTLCache[str, bool] = TTLCache(
            _REMEMBERED, _KNOWN_GOOD_SECONDS, timer=clock
        )
        self._lock = threading.Lock()

    def admit(self, key_hash: str, address: str | None) -> Admitted:
        """The key's quota and the charge to its address; raises 429 or a remembered refusal."""
        quota = None
        if self._keys.enabled:
            allowed, quota, retry_after = self._keys.take(key_hash)
            if not allowed:
                raise RateLimited(RateLimited.PER_KEY, retry_after, quota.headers())
        with self._lock:
            refusal = self._refusals.get(key_hash) if self._refusals is not None else None
            known_good = key_hash in self._known_good
        if refusal is not None:
            raise refusal.kind(refusal.message)
        if not self._addresses.enabled or known_good or address is None:
            return Admitted(quota)
        budget = address_budget(address)
        allowed, address_quota, retry_after = self._addresses.take(budget)
        if not allowed:
            raise RateLimited(RateLimited.PER_ADDRESS, retry_after, address_quota.headers())
        return Admitted(quota, budget)

    def refused(self, key_hash: str, error: KeyRefused) -> None:
        """A lookup found the key unusable: its answer is remembered (the charge stays)."""
        with self._lock:
            if self._refusals is not None:
                self._refusals[key_hash] = _Refusal(type(error), error.message)
            self._known_good.pop(key_hash, None)

    def accepted(self, key_hash: str, admitted: Admitted) -> None:
        """The key works: it is known good, and this request's charge is given back."""
        with self._lock:
            self._known_good[key_hash] = True
        if admitted.budget is not None:
            self._addresses.give_back(admitted.budget)
