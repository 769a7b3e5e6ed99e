"""The four delivery-log requests, pure: a JSON body into a validated request, or a coded 400.

delivery-contract.md §4-5: each row of their tables is one check here, in the
table's order. The cursor's form is checked here; whether it was made for these
filters and this key is ``log_cursor.check_binding``'s, once the key is known.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import (
    InvalidEventId,
    InvalidEventType,
    InvalidGenerationId,
    InvalidLimit,
    InvalidSince,
    InvalidStatus,
    InvalidUntil,
)
from .events import EVENT_ID_PREFIX, EVENT_TYPES
from .ids import is_document_id
from .log_cursor import Cursor, read_cursor
from .webhook_records import LIVE
from .webhook_requests import parse_api_key_id, parse_mode

DELIVERY_STATUSES = ("pending", "delivered", "failed", "skipped")
DEFAULT_LIMIT, MAX_LIMIT = 50, 100
MAX_EVENT_ID_CHARS = 128
# RFC 3339: a full date, "T" (or "t"/space), a time with seconds, and an offset or "Z".
_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})\Z"
)


@dataclass(frozen=True)
class EventFilters:
    """What one ``list_events`` page selects; a cursor is bound to exactly these."""

    mode: str = LIVE
    status: str | None = None
    event_type: str | None = None
    generation_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def binding(self, api_key_id: str) -> dict[str, Any]:
        """The filters and the key, as a cursor remembers them (times as text)."""
        return {
            "apiKeyId": api_key_id,
            "mode": self.mode,
            "status": self.status,
            "eventType": self.event_type,
            "generationId": self.generation_id,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }


@dataclass(frozen=True)
class ListEventsRequest:
    filters: EventFilters
    limit: int = DEFAULT_LIMIT
    cursor: Cursor | None = None
    api_key_id: str | None = None


@dataclass(frozen=True)
class EventRequest:
    """``list_attempts`` and ``resend``: one event of a key, in a mode."""

    event_id: str
    mode: str = LIVE
    api_key_id: str | None = None


@dataclass(frozen=True)
class RecoverRequest:
    mode: str
    since: datetime
    until: datetime | None = None
    api_key_id: str | None = None


def parse_list_events(data: Mapping[str, Any]) -> ListEventsRequest:
    """``list_events``' body, every field optional; 400 naming the first bad one."""
    mode = _optional_mode(data)
    api_key_id = parse_api_key_id(data)
    status = data.get("status")
    if status is not None and status not in DELIVERY_STATUSES:
        raise InvalidStatus()
    event_type = data.get("eventType")
    if event_type is not None and event_type not in EVENT_TYPES:
        raise InvalidEventType(f"eventType must be one of {', '.join(EVENT_TYPES)}")
    generation_id = data.get("generationId")
    if generation_id is not None and not is_document_id(generation_id):
        raise InvalidGenerationId()
    since = _time(data.get("since"), InvalidSince)
    until = _until(data.get("until"), since)
    filters = EventFilters(mode, status, event_type, generation_id, since, until)
    limit = data.get("limit", DEFAULT_LIMIT)
    if type(limit) is not int or not 1 <= limit <= MAX_LIMIT:
        raise InvalidLimit()
    cursor = data.get("cursor")
    return ListEventsRequest(
        filters, limit, read_cursor(cursor) if cursor is not None else None, api_key_id
    )


def parse_event_request(data: Mapping[str, Any]) -> EventRequest:
    """``list_attempts`` and ``resend``: ``eventId`` first, then ``mode`` and ``apiKeyId``."""
    event_id = data.get("eventId")
    if not is_event_id(event_id):
        raise InvalidEventId()
    assert isinstance(event_id, str)
    return EventRequest(event_id, _optional_mode(data), parse_api_key_id(data))


def parse_recover(data: Mapping[str, Any], now: datetime, log_days: float) -> RecoverRequest:
    """``recover``'s body: ``mode`` required, ``since`` within the log's window."""
    mode = parse_mode(data)
    since = _time(data.get("since"), InvalidSince)
    if since is None:
        raise InvalidSince("since must be provided as an RFC 3339 time")
    if since < window_start(now, log_days):
        raise InvalidSince(f"since must be within the last {log_days:g} days")
    until = _until(data.get("until"), since)
    return RecoverRequest(mode, since, until, parse_api_key_id(data))


def window_start(now: datetime, log_days: float) -> datetime:
    """The oldest moment the log still shows (``WEBHOOK_LOG_DAYS`` before ``now``)."""
    return now - timedelta(days=log_days)


def is_event_id(value: object) -> bool:
    return (
        isinstance(value, str)
        and value.startswith(EVENT_ID_PREFIX)
        and len(value) <= MAX_EVENT_ID_CHARS
        and is_document_id(value)
    )


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 time as an aware UTC datetime (nanoseconds cut to micro), or ``None``."""
    if not isinstance(value, str):
        return None
    match = _RFC3339.match(value)
    if match is None:
        return None
    day, clock, fraction, offset = match.groups()
    fraction = (fraction or "")[:7]  # the dot and at most six digits
    offset = "+00:00" if offset in ("Z", "z") else offset
    try:
        moment = datetime.fromisoformat(f"{day}T{clock}{fraction}{offset}")
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _optional_mode(data: Mapping[str, Any]) -> str:
    if "mode" not in data:
        return LIVE
    return parse_mode(data)


def _time(value: object, error: type[InvalidSince] | type[InvalidUntil]) -> datetime | None:
    if value is None:
        return None
    moment = parse_time(value)
    if moment is None:
        raise error()
    return moment


def _until(value: object, since: datetime | None) -> datetime | None:
    until = _time(value, InvalidUntil)
    if until is not None and since is not None and until < since:
        raise InvalidUntil("until must not be before since")
    return until
