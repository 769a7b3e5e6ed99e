"""Log secrecy: remember every API key the tests mint and find any that reached a log."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any


def read_logs(folder: Path) -> list[str]:
    """The text of every server log file written under ``folder``."""
    return [p.read_text(errors="replace") for p in sorted(folder.glob("*.log"))]


def find_leaks(keys: Iterable[str], texts: Iterable[str]) -> list[str]:
    """The keys that appear in any text, shortened so the report does not leak them again."""
    corpus = "\n".join(texts)
    return sorted(f"{key[:14]}… ({len(key)} chars)" for key in set(keys) if key and key in corpus)


def encodings(secret: str) -> list[str]:
    """A signing secret as text, its base64 part, and its raw bytes in hex and latin-1."""
    import base64
    import binascii

    forms = [secret]
    encoded = secret.removeprefix("whsec_")
    if encoded != secret:
        forms.append(encoded)
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return forms
        forms += [raw.hex(), raw.decode("latin-1"), base64.urlsafe_b64encode(raw).decode()]
    return forms


def database_text(db: Any) -> str:
    """Every document of a Firestore database, field names and values, as one text."""
    parts: list[str] = []

    def walk(collections: Iterable[Any]) -> None:
        for collection in collections:
            for snapshot in collection.get():
                parts.append(snapshot.reference.path)
                for value in (snapshot.to_dict() or {}).items():
                    parts.append(repr(value))
                    if isinstance(value[1], bytes):
                        parts.append(value[1].decode("latin-1"))
                walk(snapshot.reference.collections())

    walk(db.collections())
    return "\n".join(parts)


def secrets_in_database(db: Any, secrets: Iterable[str]) -> list[str]:
    """The secrets found in ``db`` in any of their encodings (shortened in the report)."""
    text = database_text(db)
    return sorted(
        f"{secret[:10]}… ({len(secret)} chars)"
        for secret in set(secrets)
        if any(form and form in text for form in encodings(secret))
    )
