"""Handlers that keep what the package logs, for tests and the session's leak scan."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from diffio_progress.functions.logs import JsonFormatter

H = TypeVar("H", bound=logging.Handler)


class Records(logging.Handler):
    """Every record at ``level`` or above, as logged."""

    def __init__(self, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def warnings(self) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= logging.WARNING]

    def at(self, level: str) -> list[logging.LogRecord]:
        """The records at exactly ``level`` (``"WARNING"``, ...)."""
        return [r for r in self.records if r.levelname == level]

    def clear(self) -> None:
        self.records.clear()


class JsonLines(logging.Handler):
    """Every record formatted exactly as it goes to stdout, parsed back."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.entries: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.entries.append(json.loads(self.format(record)))

    def requests(self) -> list[dict[str, Any]]:
        """The one-per-request lines."""
        return [e for e in self.entries if "httpRequest" in e]


class LogCapture(logging.Handler):
    """Keeps every record logged during the session, formatted as it would be shipped."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []
        self._lines_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        # Also keep the raw arguments: a formatter bug must not hide a leak.
        text = f"{self.format(record)} {record.args!r} {getattr(record, 'fields', '')!r}"
        with self._lines_lock:
            self.lines.append(text)


@contextmanager
def kept(handler: H, *loggers: str, level: int | None = None) -> Iterator[H]:
    """``handler`` on the named loggers (at ``level``, if given) until the block ends."""
    targets = [logging.getLogger(name) for name in loggers]
    levels = [logger.level for logger in targets]
    for logger in targets:
        logger.addHandler(handler)
        if level is not None:
            logger.setLevel(level)
    try:
        yield handler
    finally:
        for logger, previous in zip(targets, levels, strict=True):
            logger.removeHandler(handler)
            if level is not None:
                logger.setLevel(previous)
