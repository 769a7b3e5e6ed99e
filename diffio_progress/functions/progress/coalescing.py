"""Identical concurrent polls share one read: the first runs it, the others wait for its outcome."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass
class _Flight(Generic[V]):
    done: threading.Event = field(default_factory=threading.Event)
    result: V | None = None
    error: BaseException | None = None
    followers: int = 0


class Coalescer(Generic[K, V]):
    """``run(key, work)``: while a call for ``key`` is in flight, later calls join it.

    Followers get the leader's result, or its exception. Nothing is cached: a
    call that starts after the leader finished runs afresh, so an answer is
    never older than the request that receives it.
    """

    def __init__(self) -> None:
        self._flights: dict[K, _Flight[V]] = {}
        self._lock = threading.Lock()

    def run(self, key: K, work: Callable[[], V]) -> V:
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
            else:
                flight.followers += 1
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise _own_copy(flight.error)
            return flight.result  # type: ignore[return-value]
        try:
            flight.result = work()
            return flight.result
        except BaseException as error:
            flight.error = error
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()

    def followers(self, key: K) -> int:
        """How many calls are waiting on ``key``'s flight now (0 when none is in flight)."""
        with self._lock:
            flight = self._flights.get(key)
            return flight.followers if flight is not None else 0


def _own_copy(error: BaseException) -> BaseException:
    """A copy to raise: threads re-raising one exception object would tangle its traceback."""
    try:
        copied = copy.copy(error)
    except Exception:
        return error
    copied.__cause__ = error
    return copied
