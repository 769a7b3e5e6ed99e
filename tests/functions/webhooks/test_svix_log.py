"""The four delivery-log calls with the svix sink: the ``svix`` library against the stand-in."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.cloud import firestore

from tests.functions.events.svix_standin import SvixStandIn
from tests.functions.webhooks.log_world import ago
from tests.functions.webhooks.world import Api, Key, make_key
from tests.seed import MINTED_SECRETS, Seeder

URL = "https://hooks.example.com/diffio"
TYPES = ["generation.completed", "generation.failed"]


@pytest.fixture
def writer(seed: Seeder) -> Key:
    return make_key(seed, "key_writer", webhooksWrite=True)


def configured(api: Api, svix: SvixStandIn, key: Key, mode: str = "live") -> str:
    answer = api.configure(key, mode=mode, url=URL, eventTypes=TYPES)
    assert answer.status_code == 200, answer.get_json()
    for environment in svix.environments.values():
        MINTED_SECRETS.update(s for v in environment.secrets.values() for s in v)
    return str(answer.get_json()["webhook"]["endpointId"])


def sent(api: Api, key: Key, event_type: str = "generation.completed") -> str:
    answer = api.send_test(key, eventType=event_type, mode="live")
    assert answer.status_code == 200, answer.get_json()
    return str(answer.get_json()["eventId"])


def no_url_query(answer: Any) -> None:
    assert "query-secret" not in json.dumps(answer) and "?" not in json.dumps(answer)


def test_events_pages_and_attempts_come_from_svix(
    api: Api, svix: SvixStandIn, writer: Key, webhooks_db: firestore.Client
) -> None:
    empty = api.list_events(writer).get_json()
    assert empty == {"events": [], "endpoint": None, "nextCursor": None}
    endpoint_id = configured(api, svix, writer)
    first, second = sent(api, writer), sent(api, writer, "generation.failed")

    page = api.list_events(writer, limit=1).get_json()
    assert [e["eventId"] for e in page["events"]] == [second]
    entry = page["events"][0]
    assert entry["test"] is True and entry["eventType"] == "generation.failed"
    assert entry["delivery"]["status"] == "delivered"
    assert entry["delivery"]["endpointId"] == endpoint_id
    assert page["endpoint"] == {
        "endpointId": endpoint_id,
        "disabled": False,
        "disabledReason": None,
        "disabledAt": None,
    }
    following = api.list_events(writer, limit=1, cursor=page["nextCursor"]).get_json()
    assert [e["eventId"] for e in following["events"]] == [first]
    assert following["nextCursor"] is None
    moved = api.list_events(writer, limit=1, cursor=page["nextCursor"], status="failed")
    assert (moved.status_code, moved.get_json()["code"]) == (400, "invalid_cursor")
    typed = api.list_events(writer, eventType="generation.completed").get_json()
    assert [e["eventId"] for e in typed["events"]] == [first]
    assert api.list_events(writer, status="failed").get_json()["events"] == []
    assert api.list_events(writer, since=ago(minutes=-5).isoformat()).get_json()["events"] == []

    attempts = api.list_attempts(writer, eventId=first).get_json()
    assert [(a["trigger"], a["status"], a["httpStatus"]) for a in attempts["attempts"]] == [
        ("event", "delivered", 200)
    ]
    no_url_query(attempts)
    missing = api.list_attempts(writer, eventId="evt_" + "9" * 32)
    assert (missing.status_code, missing.get_json()["code"]) == (404, "event_not_found")
    in_test = api.list_attempts(writer, eventId=first, mode="test")
    assert in_test.get_json()["code"] == "event_not_found"
    assert list(webhooks_db.collections()) == []  # nothing about Svix deliveries stored


def test_recover_and_resend_go_through_svix(api: Api, svix: SvixStandIn, writer: Key) -> None:
    since = ago(hours=1).isoformat()
    missing = api.recover(writer, mode="live", since=since)
    assert (missing.status_code, missing.get_json()["code"]) == (404, "webhook_not_configured")
    endpoint_id = configured(api, svix, writer)
    svix.deliveries_answer = 500
    event_id = sent(api, writer)
    svix.deliveries_answer = 200
    delivered_id = sent(api, writer, "generation.failed")
    failed = api.list_events(writer, status="failed").get_json()["events"]
    assert [e["eventId"] for e in failed] == [event_id]

    recovered = api.recover(writer, mode="live", since=since)
    assert recovered.status_code == 200, recovered.get_json()
    assert recovered.get_json() == {"recovered": 1}
    app_id = svix.apps["key_writer"]["id"]
    assert ("POST", f"/api/v1/app/{app_id}/endpoint/{endpoint_id}/recover") in [
        c[:2] for c in svix.calls
    ]
    assert api.list_events(writer, status="failed").get_json()["events"] == []

    resent = api.resend(writer, eventId=delivered_id)
    assert resent.status_code == 200, resent.get_json()
    answer = resent.get_json()
    assert (answer["eventId"], answer["mode"], answer["apiKeyId"]) == (
        delivered_id,
        "live",
        "key_writer",
    )
    assert answer["svixMessageId"].startswith("msg_") and "delivery" not in answer
    attempts = api.list_attempts(writer, eventId=delivered_id).get_json()["attempts"]
    triggers = [a["trigger"] for a in attempts]
    assert triggers == ["event", "resend"]
    unknown = api.resend(writer, eventId="evt_" + "8" * 32)
    assert (unknown.status_code, unknown.get_json()["code"]) == (404, "event_not_found")

    svix.endpoints[endpoint_id]["disabled"] = True
    for call in (
        api.recover(writer, mode="live", since=since),
        api.resend(writer, eventId=event_id),
    ):
        assert (call.status_code, call.get_json()["code"]) == (409, "webhook_disabled")
