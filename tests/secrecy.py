"""Log secrecy: remember every API key the tests mint and find any that reached a log."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def read_logs(folder: Path) -> list[str]:
    """The text of every server log file written under ``folder``."""
    return [p.read_text(errors="replace") for p in sorted(folder.glob("*.log"))]


def find_leaks(keys: Iterable[str], texts: Iterable[str]) -> list[str]:
    """The keys that appear in any text, shortened so the report does not leak them again."""
    corpus = "\n".join(texts)
    return sorted(f"{key[:14]}… ({len(key)} chars)" for key in set(keys) if key and key in corpus)
