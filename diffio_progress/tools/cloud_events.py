"""Eventarc's Firestore CloudEvents made locally: binary mode, a protobuf DocumentEventData.

What Eventarc POSTs to a function for ``google.cloud.firestore.document.v1.written``:
``ce-*`` headers (the document path in ``ce-document`` and ``ce-subject``) and
the before and after documents as ``application/protobuf``. The local world's
bridge and the tests send exactly this.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.events.cloud.firestore_v1 import (
    ArrayValue,
    Document,
    DocumentEventData,
    MapValue,
    Value,
)

WRITTEN = "google.cloud.firestore.document.v1.written"
DATABASE = "(default)"
DATA_SCHEMA = (
    "https://github.com/googleapis/google-cloudevents/blob/main/proto/google/events/"
    "cloud/firestore/v1/data.proto"
)


def encode_value(value: Any) -> Value:
    """A Python value as read from Firestore, as a Firestore ``Value`` message."""
    if value is None:
        return Value(null_value=0)
    if isinstance(value, bool):
        return Value(boolean_value=value)
    if isinstance(value, int):
        return Value(integer_value=value)
    if isinstance(value, float):
        return Value(double_value=value)
    if isinstance(value, str):
        return Value(string_value=value)
    if isinstance(value, bytes):
        return Value(bytes_value=value)
    if isinstance(value, datetime):
        return Value(timestamp_value=value)
    if isinstance(value, Mapping):
        fields = {str(k): encode_value(v) for k, v in value.items()}
        return Value(map_value=MapValue(fields=fields))
    if isinstance(value, list | tuple):
        return Value(array_value=ArrayValue(values=[encode_value(v) for v in value]))
    path = getattr(value, "path", None)  # a DocumentReference
    if isinstance(path, str):
        return Value(reference_value=path)
    latitude, longitude = getattr(value, "latitude", None), getattr(value, "longitude", None)
    if isinstance(latitude, float) and isinstance(longitude, float):
        return Value(geo_point_value={"latitude": latitude, "longitude": longitude})
    raise TypeError(f"cannot encode a {type(value).__name__} as a Firestore value")


def document_name(project: str, path: str) -> str:
    return f"projects/{project}/databases/{DATABASE}/documents/{path}"


def event_data(
    project: str,
    path: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    updated: datetime | None = None,
) -> bytes:
    """The serialized ``DocumentEventData``: ``old_value`` and ``value``, each when present."""

    def document(fields: Mapping[str, Any]) -> Document:
        encoded = {str(k): encode_value(v) for k, v in fields.items()}
        return Document(name=document_name(project, path), fields=encoded, update_time=updated)

    message = DocumentEventData()
    if before is not None:
        message.old_value = document(before)
    if after is not None:
        message.value = document(after)
    return bytes(DocumentEventData.serialize(message))


def binary_headers(
    project: str, path: str, event_id: str | None = None, time: datetime | None = None
) -> dict[str, str]:
    """The CloudEvent attributes as Eventarc sends them in binary mode."""
    moment = (time or datetime.now(UTC)).astimezone(UTC)
    return {
        "ce-specversion": "1.0",
        "ce-id": event_id or secrets.token_hex(16),
        "ce-source": f"//firestore.googleapis.com/projects/{project}/databases/{DATABASE}",
        "ce-type": WRITTEN,
        "ce-subject": f"documents/{path}",
        "ce-time": moment.isoformat().replace("+00:00", "Z"),
        "ce-dataschema": DATA_SCHEMA,
        "ce-project": project,
        "ce-database": DATABASE,
        "ce-namespace": DATABASE,
        "ce-location": "local",
        "ce-document": path,
        "content-type": "application/protobuf",
    }


def written_event(
    project: str,
    path: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    *,
    event_id: str | None = None,
    time: datetime | None = None,
) -> tuple[dict[str, str], bytes]:
    """Headers and body of one ``document.v1.written`` POST."""
    return binary_headers(project, path, event_id, time), event_data(project, path, before, after)
