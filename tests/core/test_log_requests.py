"""The delivery log's requests and cursor (log_requests.py, log_cursor.py): every 400 of §4-5."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from diffio_progress.core.errors import ApiError
from diffio_progress.core.log_cursor import (
    Cursor,
    binding_digest,
    check_binding,
    make_cursor,
    read_cursor,
)
from diffio_progress.core.log_requests import (
    EventFilters,
    parse_event_request,
    parse_list_events,
    parse_recover,
    parse_time,
)

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
PATH = ("apiProjects", "p1", "generations", "g1", "events", "generation.completed")
GOOD_CURSOR = make_cursor(Cursor(binding_digest(EventFilters().binding("key_1")), 1, PATH))


def code_of(parse: Any, body: dict[str, Any]) -> str | None:
    try:
        parse(body)
    except ApiError as error:
        assert error.status == 400
        return error.code
    return None


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, None),
        ({"mode": "test", "status": "failed", "limit": 100, "cursor": GOOD_CURSOR}, None),
        ({"since": "2025-01-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"}, None),
        ({"mode": "LIVE"}, "invalid_mode"),
        ({"mode": None}, "invalid_mode"),
        ({"apiKeyId": ""}, "invalid_api_key_id"),
        ({"apiKeyId": 7}, "invalid_api_key_id"),
        ({"status": "sent"}, "invalid_status"),
        ({"status": ["failed"]}, "invalid_status"),
        ({"eventType": "generation.done"}, "invalid_event_type"),
        ({"eventType": 1}, "invalid_event_type"),
        ({"generationId": "a/b"}, "invalid_generation_id"),
        ({"generationId": ""}, "invalid_generation_id"),
        ({"since": "yesterday"}, "invalid_since"),
        ({"since": "2025-01-01"}, "invalid_since"),
        ({"since": 1700000000}, "invalid_since"),
        ({"since": "2025-13-01T00:00:00Z"}, "invalid_since"),
        ({"until": "2025-01-01T00:00:00"}, "invalid_until"),
        ({"since": "2025-01-02T00:00:00Z", "until": "2025-01-01T00:00:00Z"}, "invalid_until"),
        ({"limit": 0}, "invalid_limit"),
        ({"limit": 101}, "invalid_limit"),
        ({"limit": 5.0}, "invalid_limit"),
        ({"limit": True}, "invalid_limit"),
        ({"limit": "5"}, "invalid_limit"),
        ({"cursor": ""}, "invalid_cursor"),
        ({"cursor": "not a cursor"}, "invalid_cursor"),
        ({"cursor": 5}, "invalid_cursor"),
        ({"cursor": GOOD_CURSOR[:-2] + "AA"}, "invalid_cursor"),
        ({"cursor": "x" * 5000}, "invalid_cursor"),
        # The first bad field in the table's order decides.
        ({"mode": "x", "status": "x", "limit": 0}, "invalid_mode"),
        ({"status": "x", "limit": 0}, "invalid_status"),
    ],
)
def test_list_events_body(body: dict[str, Any], code: str | None) -> None:
    assert code_of(parse_list_events, body) == code


def test_list_events_defaults() -> None:
    request = parse_list_events({})
    assert (request.limit, request.cursor, request.api_key_id) == (50, None, None)
    assert request.filters == EventFilters(mode="live")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"eventId": "evt_" + "a" * 32}, None),
        ({"eventId": "evt_1", "mode": "test", "apiKeyId": "key_2"}, None),
        ({}, "invalid_event_id"),
        ({"eventId": "msg_1"}, "invalid_event_id"),
        ({"eventId": "evt_a/b"}, "invalid_event_id"),
        ({"eventId": "evt_" + "a" * 200}, "invalid_event_id"),
        ({"eventId": ["evt_1"]}, "invalid_event_id"),
        ({"eventId": "evt_1", "mode": "Live"}, "invalid_mode"),
        ({"eventId": "evt_1", "apiKeyId": None}, "invalid_api_key_id"),
    ],
)
def test_event_request_body(body: dict[str, Any], code: str | None) -> None:
    assert code_of(parse_event_request, body) == code


def since(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"mode": "live", "since": since(29)}, None),
        ({"mode": "test", "since": since(1), "until": since(0)}, None),
        ({"since": since(1)}, "invalid_mode"),
        ({"mode": "live"}, "invalid_since"),
        ({"mode": "live", "since": "soon"}, "invalid_since"),
        ({"mode": "live", "since": since(31)}, "invalid_since"),
        ({"mode": "live", "since": since(1), "until": "later"}, "invalid_until"),
        ({"mode": "live", "since": since(1), "until": since(2)}, "invalid_until"),
        ({"mode": "live", "since": since(1), "apiKeyId": ""}, "invalid_api_key_id"),
    ],
)
def test_recover_body(body: dict[str, Any], code: str | None) -> None:
    assert code_of(lambda b: parse_recover(b, NOW, 30), body) == code


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-06-01T12:00:00Z", NOW),
        ("2025-06-01t14:00:00+02:00", NOW),
        ("2025-06-01T12:00:00.123456789Z", NOW + timedelta(microseconds=123456)),
        ("2025-06-01 12:00:00z", NOW),
        ("2025-06-01T12:00Z", None),
        ("2025-06-01T12:00:00", None),
        ("2025-06-01T25:00:00Z", None),
        ("2025-06-01T12:00:00+24:00", None),
        (" 2025-06-01T12:00:00Z", None),
    ],
)
def test_rfc3339_times(text: str, expected: datetime | None) -> None:
    assert parse_time(text) == expected


def test_a_cursor_is_bound_to_its_filters_and_key() -> None:
    filters = EventFilters(status="failed", since=NOW)
    cursor = Cursor(binding_digest(filters.binding("key_1")), 1_700_000_000_000_000, PATH)
    text = make_cursor(cursor)
    assert read_cursor(text) == cursor
    check_binding(read_cursor(text), filters.binding("key_1"))
    for other in (
        filters.binding("key_2"),
        EventFilters(status="skipped", since=NOW).binding("key_1"),
        EventFilters(status="failed", since=NOW, mode="test").binding("key_1"),
        EventFilters(status="failed").binding("key_1"),
    ):
        with pytest.raises(ApiError) as refused:
            check_binding(read_cursor(text), other)
        assert refused.value.code == "invalid_cursor"


def test_a_svix_cursor_round_trips() -> None:
    cursor = Cursor("b", svix_iterator="iter_123")
    assert read_cursor(make_cursor(cursor)) == cursor


@pytest.mark.parametrize(
    "data",
    [
        b'{"v":2,"b":"x","t":1,"p":"webhookTests/k/events/evt_1"}',
        b'{"v":1,"b":"x","t":"1","p":"webhookTests/k/events/evt_1"}',
        b'{"v":1,"b":"x","t":1,"p":"apiKeys/k"}',
        b'{"v":1,"b":"x","t":1,"p":"apiProjects/p/generations/g/events/other"}',
        b'{"v":1,"b":"x","t":1,"p":"webhookTests/k/events/__x__"}',
        b'{"v":1,"b":"x","s":5}',
        b"[1]",
    ],
)
def test_a_well_checksummed_cursor_that_this_code_cannot_have_made_is_refused(
    data: bytes,
) -> None:
    import hashlib

    check = hashlib.sha256(b"diffio-progress list_events cursor\x00" + data).digest()[:12]
    text = base64.urlsafe_b64encode(check + data).decode().rstrip("=")
    with pytest.raises(ApiError) as refused:
        read_cursor(text)
    assert refused.value.code == "invalid_cursor"
