"""The opaque ``list_events`` cursor, pure: a page's last position, bound to its filters and key.

delivery-contract.md §4. A cursor is base64url of a checksum and compact JSON:
the version, a digest of the filters and the target ``apiKeyId``
(``binding_digest``), and the keyset position after which the next page
starts: the last event's ``createdAt`` (microseconds) and document path, or,
with the Svix sink, Svix's own iterator. No server secret: a cursor carries no
authority (every page's query is scoped to the authorized key and mode), so a
hand-made one can only point inside the caller's own log. The checksum tells a
cursor this code made from a mangled or foreign string, and the digest one made
for other filters or another key; both are 400 ``invalid_cursor``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidCursor
from .events import EVENT_TYPES, EVENTS
from .ids import is_document_id

VERSION = 1
MAX_CURSOR_CHARS = 4096
_DOMAIN = b"diffio-progress list_events cursor\x00"
_CHECK_BYTES = 12
TESTS = "webhookTests"


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: a keyset position (``created_us``, ``path``), or Svix's."""

    binding: str
    created_us: int | None = None
    path: tuple[str, ...] | None = None
    svix_iterator: str | None = None


def binding_digest(binding: Mapping[str, Any]) -> str:
    """A short digest of the filters and key a cursor is made for (canonical JSON)."""
    text = json.dumps(binding, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def make_cursor(cursor: Cursor) -> str:
    """The opaque text of ``cursor``."""
    data: dict[str, Any] = {"v": VERSION, "b": cursor.binding}
    if cursor.svix_iterator is not None:
        data["s"] = cursor.svix_iterator
    else:
        data.update(t=cursor.created_us, p="/".join(cursor.path or ()))
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=True).encode()
    raw = _check(payload) + payload
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_cursor(text: object) -> Cursor:
    """The cursor in ``text``, or 400 ``invalid_cursor`` for anything this code did not make."""
    if not isinstance(text, str) or not 0 < len(text) <= MAX_CURSOR_CHARS:
        raise InvalidCursor()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        check, payload = raw[:_CHECK_BYTES], raw[_CHECK_BYTES:]
        if check != _check(payload):
            raise InvalidCursor()
        data = json.loads(payload)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidCursor() from None
    if not isinstance(data, dict) or data.get("v") != VERSION or not isinstance(data.get("b"), str):
        raise InvalidCursor()
    if "s" in data:
        if not isinstance(data["s"], str):
            raise InvalidCursor()
        return Cursor(data["b"], svix_iterator=data["s"])
    created, path = data.get("t"), data.get("p")
    if type(created) is not int or not isinstance(path, str) or not is_event_path(path):
        raise InvalidCursor()
    return Cursor(data["b"], created, tuple(path.split("/")))


def check_binding(cursor: Cursor, binding: Mapping[str, Any]) -> None:
    """400 ``invalid_cursor`` when ``cursor`` was made for other filters or another key."""
    if cursor.binding != binding_digest(binding):
        raise InvalidCursor()


def is_event_path(path: str) -> bool:
    """Whether ``path`` names an event document of the layout (outbox or test event)."""
    parts = path.split("/")
    if not all(is_document_id(part) for part in parts):
        return False
    if len(parts) == 6:
        return (
            parts[0] == "apiProjects"
            and parts[2] == "generations"
            and parts[4] == EVENTS
            and parts[5] in EVENT_TYPES
        )
    return len(parts) == 4 and parts[0] == TESTS and parts[2] == EVENTS


def _check(payload: bytes) -> bytes:
    return hashlib.sha256(_DOMAIN + payload).digest()[:_CHECK_BYTES]
