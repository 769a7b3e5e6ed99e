"""Decode Eventarc's Firestore CloudEvent: which document, its status before and after, when.

The data is a protobuf ``google.events.cloud.firestore.v1.DocumentEventData``
(``application/protobuf``), decoded with the ``google-events`` package. Only
what the decision needs is kept: whether the document existed before and after
the write, and its ``status`` field each time; the function reads the current
documents itself rather than trust this copy, which may be stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from google.events.cloud.firestore_v1 import DocumentEventData
from google.protobuf.message import DecodeError

from diffio_progress.core.events import Target, parse_target

DOCUMENTS_PREFIX = "documents/"


class MalformedEvent(ValueError):
    """An event this function can never handle; acknowledged (never retried), logged once."""


@dataclass(frozen=True)
class DocumentWrite:
    """One Firestore write as the event tells it: ``before``/``after`` are ``None`` when absent.

    Each present document is a dict holding at most its ``status`` field.
    """

    event_id: str
    time: datetime | None
    target: Target
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def decode(event: Any) -> DocumentWrite:
    """A ``cloudevents`` CloudEvent (as functions-framework passes it) as a ``DocumentWrite``."""
    attributes = event.get_attributes()
    event_id = str(attributes.get("id") or "")
    document = attributes.get("document")
    subject = attributes.get("subject")
    if not isinstance(document, str) and isinstance(subject, str):
        document = subject.removeprefix(DOCUMENTS_PREFIX)
    if not isinstance(document, str):
        raise MalformedEvent("the event names no document")
    target = parse_target(document)
    if target is None:
        raise MalformedEvent("the document is outside the two trigger patterns")
    data = event.get_data()
    if not isinstance(data, bytes | bytearray):
        raise MalformedEvent("the event data is not protobuf bytes")
    try:
        message = DocumentEventData.pb(DocumentEventData.deserialize(bytes(data)))
    except (DecodeError, TypeError, ValueError):
        raise MalformedEvent("the event data is not a DocumentEventData protobuf") from None
    before = _fields(message, "old_value")
    after = _fields(message, "value")
    if before is None and after is None:
        raise MalformedEvent("the event carries neither the old nor the new document")
    return DocumentWrite(event_id, _time(attributes.get("time")), target, before, after)


def _fields(message: Any, name: str) -> dict[str, Any] | None:
    if not message.HasField(name):
        return None
    fields = getattr(message, name).fields
    if "status" not in fields:
        return {}
    value = fields["status"]
    # A non-string status (a number, a map...) is malformed: it reads as pending, as in a poll.
    kind = value.WhichOneof("value_type")
    return {"status": value.string_value if kind == "string_value" else None}


def _time(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
