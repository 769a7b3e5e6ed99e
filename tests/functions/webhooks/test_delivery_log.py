"""list_events and list_attempts with the direct sink, through main.py's entry points (§4)."""

from __future__ import annotations

from typing import Any

import pytest
from google.cloud import firestore

from diffio_progress.core.deliveries import pair_endpoint_id
from tests.functions.events.receivers import Receiver
from tests.functions.webhooks.log_world import ago, seed_attempt, seed_event
from tests.functions.webhooks.world import (
    LIST_ATTEMPTS,
    LIST_EVENTS,
    LOG_TARGETS,
    RECOVER,
    RESEND,
    Api,
    Key,
    make_key,
)
from tests.seed import Seeder

EVENT_ID = "evt_" + "0" * 32


@pytest.fixture
def writer(seed: Seeder) -> Key:
    return make_key(seed, "key_writer", webhooksWrite=True)


def ids(answer: dict[str, Any]) -> list[str]:
    return [e["eventId"] for e in answer["events"]]


def test_events_of_the_window_newest_first_with_filters_and_the_endpoint_block(
    api: Api, writer: Key, webhooks_db: firestore.Client, receiver: Receiver
) -> None:
    db = webhooks_db
    old = seed_event(db, "key_writer", "gen-old", created=ago(days=31))
    failed = seed_event(db, "key_writer", "gen-1", status="failed", created=ago(hours=3))
    pending = seed_event(db, "key_writer", "gen-2", status="pending", created=ago(hours=2))
    skipped = seed_event(db, "key_writer", "gen-3", endpoint=False, created=ago(hours=1))
    queued = seed_event(db, "key_writer", "gen-3", event_type="generation.queued")
    seed_event(db, "key_other", "gen-9")
    test_live = seed_event(db, "key_writer", "t", test=True, created=ago(minutes=30))
    test_mode = seed_event(db, "key_writer", "t", mode="test", test=True)

    answer = api.list_events(writer).get_json()
    assert ids(answer) == [e["eventId"] for e in (queued, test_live, skipped, pending, failed)]
    assert old["eventId"] not in ids(answer)
    assert answer["endpoint"] is None and answer["nextCursor"] is None
    entry = answer["events"][3]
    assert entry["delivery"] == {
        "endpointId": pair_endpoint_id("key_writer", "live"),
        "status": "pending",
        "attempts": 1,
        "lastAttemptAt": entry["delivery"]["lastAttemptAt"],
        "lastHttpStatus": 500,
        "nextAttemptAt": entry["delivery"]["nextAttemptAt"],
    }
    assert entry["generationId"] == "gen-2" and entry["payload"] == pending["payload"]
    assert answer["events"][2]["delivery"]["endpointId"] is None
    assert answer["events"][2]["delivery"]["status"] == "skipped"
    assert answer["events"][1]["test"] is True and "test" not in answer["events"][0]
    assert "test" not in answer["events"][1]["payload"]

    def listed(**body: Any) -> list[str]:
        response = api.list_events(writer, **body)
        assert response.status_code == 200, response.get_json()
        return ids(response.get_json())

    assert listed(mode="test") == [test_mode["eventId"]]
    assert listed(status="failed") == [failed["eventId"]]
    assert listed(status="skipped") == [skipped["eventId"]]
    assert listed(eventType="generation.queued") == [queued["eventId"]]
    assert listed(generationId="gen-3") == [queued["eventId"], skipped["eventId"]]
    since, until = ago(hours=2, minutes=30).isoformat(), ago(minutes=45).isoformat()
    assert listed(since=since, until=until) == [skipped["eventId"], pending["eventId"]]
    delivered = [queued["eventId"], test_live["eventId"]]  # the 31-day-old one is out of the window
    assert listed(since=ago(days=40).isoformat(), status="delivered") == delivered

    configured = api.configure(
        writer, mode="live", url=receiver.url, eventTypes=["generation.failed"]
    )
    assert configured.status_code == 200
    endpoint_id = configured.get_json()["webhook"]["endpointId"]
    shown = api.list_events(writer, limit=1).get_json()["endpoint"]
    assert shown == {
        "endpointId": endpoint_id,
        "disabled": False,
        "disabledReason": None,
        "disabledAt": None,
    }


def test_pages_never_repeat_or_skip_while_events_are_added(
    api: Api, writer: Key, webhooks_db: firestore.Client
) -> None:
    same_moment = ago(hours=5)
    seeded = [seed_event(webhooks_db, "key_writer", f"g{i}", created=same_moment) for i in range(3)]
    seeded += [
        seed_event(webhooks_db, "key_writer", f"h{i}", created=ago(hours=4 - i)) for i in range(4)
    ]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        body: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        answer = api.list_events(writer, **body).get_json()
        seen += ids(answer)
        pages += 1
        # New events arrive between pages, newer than everything already recorded.
        seed_event(webhooks_db, "key_writer", f"new{pages}")
        cursor = answer["nextCursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(e["eventId"] for e in seeded)
    assert len(seen) == len(set(seen)) == 7 and pages == 4


def test_a_cursor_only_works_with_its_own_filters_and_key(
    api: Api, seed: Seeder, writer: Key, webhooks_db: firestore.Client
) -> None:
    admin = make_key(seed, "key_admin", admin=True)
    for i in range(3):
        seed_event(webhooks_db, "key_writer", f"g{i}", created=ago(hours=i + 1))
    cursor = api.list_events(writer, limit=1).get_json()["nextCursor"]
    assert cursor
    assert api.list_events(writer, limit=1, cursor=cursor).status_code == 200
    assert api.list_events(writer, limit=5, cursor=cursor).status_code == 200  # limit is free
    for body in (
        {"status": "failed"},
        {"mode": "test"},
        {"eventType": "generation.failed"},
        {"since": ago(days=1).isoformat()},
    ):
        refused = api.list_events(writer, cursor=cursor, **body)
        assert (refused.status_code, refused.get_json()["code"]) == (400, "invalid_cursor"), body
    other_key = api.list_events(admin, cursor=cursor)
    assert other_key.get_json()["code"] == "invalid_cursor"
    on_behalf = api.list_events(admin, cursor=cursor, apiKeyId="key_writer")
    assert on_behalf.status_code == 200


def test_attempts_oldest_first_only_of_the_keys_events_in_the_window(
    api: Api, writer: Key, webhooks_db: firestore.Client
) -> None:
    db = webhooks_db
    event = seed_event(db, "key_writer", "gen-1", status="failed")
    later = seed_attempt(db, event, ago(minutes=1), "relay", 503)
    first = seed_attempt(db, event, ago(minutes=10), "event", None)
    answer = api.list_attempts(writer, eventId=event["eventId"]).get_json()
    assert answer["eventId"] == event["eventId"]
    assert [a["attemptId"] for a in answer["attempts"]] == [first, later]
    attempt = answer["attempts"][1]
    assert set(attempt) == {
        "attemptId",
        "endpointId",
        "at",
        "trigger",
        "status",
        "httpStatus",
        "error",
        "durationMs",
        "response",
    }
    assert (attempt["trigger"], attempt["status"], attempt["httpStatus"]) == (
        "relay",
        "failed",
        503,
    )
    assert len(attempt["response"]) == 1024 and answer["attempts"][0]["httpStatus"] is None

    hidden = [
        seed_event(db, "key_other", "gen-2"),
        seed_event(db, "key_writer", "gen-3", mode="test"),
        seed_event(db, "key_writer", "gen-4", created=ago(days=31)),
    ]
    for other in [*hidden, {"eventId": EVENT_ID}]:
        missing = api.list_attempts(writer, eventId=other["eventId"])
        assert (missing.status_code, missing.get_json()["code"]) == (404, "event_not_found")
    in_test_mode = api.list_attempts(writer, eventId=hidden[1]["eventId"], mode="test")
    assert in_test_mode.status_code == 200 and in_test_mode.get_json()["attempts"] == []


# Every 400 of §4-5, through the entry points (one row each; the table's order decides).
BAD_BODIES: list[tuple[str, dict[str, Any], str]] = [
    (LIST_EVENTS, {"mode": "LIVE"}, "invalid_mode"),
    (LIST_EVENTS, {"apiKeyId": ""}, "invalid_api_key_id"),
    (LIST_EVENTS, {"status": "sent"}, "invalid_status"),
    (LIST_EVENTS, {"eventType": "x"}, "invalid_event_type"),
    (LIST_EVENTS, {"generationId": "a/b"}, "invalid_generation_id"),
    (LIST_EVENTS, {"since": "now"}, "invalid_since"),
    (LIST_EVENTS, {"until": "now"}, "invalid_until"),
    (LIST_EVENTS, {"limit": 101}, "invalid_limit"),
    (LIST_EVENTS, {"cursor": "abc"}, "invalid_cursor"),
    (LIST_ATTEMPTS, {}, "invalid_event_id"),
    (LIST_ATTEMPTS, {"eventId": EVENT_ID, "mode": "x"}, "invalid_mode"),
    (RECOVER, {"since": "2025-01-01T00:00:00Z"}, "invalid_mode"),
    (RECOVER, {"mode": "live"}, "invalid_since"),
    (RECOVER, {"mode": "live", "since": "2000-01-01T00:00:00Z"}, "invalid_since"),
    (RECOVER, {"mode": "live", "since": "2999-01-01T00:00:00Z", "until": "x"}, "invalid_until"),
    (RESEND, {"eventId": "msg_1"}, "invalid_event_id"),
    (RESEND, {"eventId": EVENT_ID, "apiKeyId": 5}, "invalid_api_key_id"),
]


@pytest.mark.parametrize("sink", ["direct", "svix"])
def test_each_400_before_the_key_is_read(
    api: Api, sink: str, request: pytest.FixtureRequest
) -> None:
    if sink == "svix":
        request.getfixturevalue("svix")
    for target, body, code in BAD_BODIES:
        # No key at all: the body's fields are checked first (webhooks-api.md §2's order).
        refused = api.post(target, None, body)
        assert (refused.status_code, refused.get_json()["code"]) == (400, code), (target, body)


def body_for(target: str) -> dict[str, Any]:
    return {
        LIST_EVENTS: {},
        LIST_ATTEMPTS: {"eventId": EVENT_ID},
        RECOVER: {"mode": "live", "since": ago(days=1).isoformat()},
        RESEND: {"eventId": EVENT_ID},
    }[target]


@pytest.mark.parametrize("sink", ["direct", "svix"])
@pytest.mark.parametrize("target", LOG_TARGETS)
def test_who_may_call_each_of_the_four_as_configure(
    api: Api, seed: Seeder, target: str, sink: str, request: pytest.FixtureRequest
) -> None:
    if sink == "svix":
        request.getfixturevalue("svix")
    reader = make_key(seed, "key_reader")
    writer = make_key(seed, "key_w", webhooksWrite=True)
    admin = make_key(seed, "key_admin", admin=True)
    make_key(seed, "key_stranger", user_id="user-2", admin=True)
    body = body_for(target)

    def code(key: Key | None, **extra: Any) -> tuple[int, str | None]:
        answer = api.post(target, key, {**body, **extra})
        return answer.status_code, (answer.get_json() or {}).get("code")

    assert code(None) == (401, "api_key_missing")
    assert code(reader) == (403, "permission_denied")
    assert code(writer, apiKeyId="key_admin") == (403, "forbidden")
    assert code(admin, apiKeyId="key_nobody") == (404, "api_key_not_found")
    assert code(admin, apiKeyId="key_stranger") == (404, "api_key_not_found")
    allowed = {LIST_EVENTS: (200, None), LIST_ATTEMPTS: (404, "event_not_found")}
    allowed |= {RECOVER: (404, "webhook_not_configured"), RESEND: (404, "event_not_found")}
    assert code(writer) == allowed[target]
    assert code(admin, apiKeyId="key_w") == allowed[target]
