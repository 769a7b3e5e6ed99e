"""A deployed function's handler, built once per process from the environment, on first use."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

from .config import Settings

T = TypeVar("T")


class OncePerProcess(Generic[T]):
    """``get()`` builds the value from the settings the first time, once however many threads ask.

    Built on first use, not at import: importing needs no credentials and reads
    no environment (a bad variable fails the first request, naming it).
    ``reset()`` forgets it, for tests that change the environment between cases.
    """

    def __init__(self, build: Callable[[Settings], T]) -> None:
        self._build = build
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self, environ: Mapping[str, str] | None = None) -> T:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._build(Settings.from_env(environ))
                value = self._value
        return value

    def reset(self) -> T | None:
        """Forget the value; returns it (``None`` if none was built), for the caller to close."""
        with self._lock:
            value, self._value = self._value, None
        return value
