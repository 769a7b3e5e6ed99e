"""Calls racing at one barrier on threads of their own, with an observer reading throughout."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def race(
    *calls: Callable[[], T],
    observe: Callable[[], None] | None = None,
    timeout: float = 120,
) -> list[T]:
    """Release ``calls`` at the same moment, each on its own thread; their results, in order.

    ``observe``, if given, is one read of the shared state. It is released with the calls,
    called over and over while any of them runs, and once more after they have all returned,
    so what it collects always ends with the final state, however fast the calls were.
    Any thread's error fails the test here, in this thread.
    """
    barrier = threading.Barrier(len(calls) + (observe is not None))
    done = threading.Event()
    results: dict[int, T] = {}
    errors: list[tuple[str, BaseException]] = []

    def guarded(name: str, call: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                barrier.wait()
                call()
            except BaseException as error:  # surfaced below
                errors.append((name, error))

        return run

    def keep(index: int, call: Callable[[], T]) -> Callable[[], None]:
        return lambda: results.__setitem__(index, call())

    def watch(read: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            while not done.is_set():
                read()
            read()  # after the last call returned: the final state, always seen

        return run

    racers = [
        threading.Thread(target=guarded(getattr(c, "__name__", repr(c)), keep(i, c)))
        for i, c in enumerate(calls)
    ]
    observer = observe and threading.Thread(target=guarded("observe", watch(observe)))
    for thread in racers + ([observer] if observer else []):
        thread.start()
    for thread in racers:
        thread.join(timeout)
    done.set()
    if observer:
        observer.join(30)
    assert not errors, errors
    assert len(results) == len(calls), "a racing call did not return in time"
    return [results[i] for i in range(len(calls))]
