"""Log secrecy: remember every API key the tests mint and find any that reached a log."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path

from diffio_progress.functions.logs import JsonFormatter


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


def read_logs(folder: Path) -> list[str]:
    """The text of every server log file written under ``folder``."""
    return [p.read_text(errors="replace") for p in sorted(folder.glob("*.log"))]


def find_leaks(keys: Iterable[str], texts: Iterable[str]) -> list[str]:
    """The keys that appear in any text, shortened so the report does not leak them again."""
    corpus = "\n".join(texts)
    return sorted(f"{key[:14]}… ({len(key)} chars)" for key in set(keys) if key and key in corpus)
