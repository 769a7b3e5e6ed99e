"""recover, resend and logged test events with the direct sink, through the entry points (§5)."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.cloud import firestore

from diffio_progress.core.deliveries import pair_endpoint_id
from tests.functions.events.receivers import Receiver
from tests.functions.webhooks.log_world import ago, seed_event
from tests.functions.webhooks.world import Api, Key, make_key
from tests.log_records import LogCapture
from tests.secrecy import encodings
from tests.seed import MINTED_SECRETS, Seeder

FAILED_TYPE = "generation.failed"


@pytest.fixture
def writer(seed: Seeder) -> Key:
    return make_key(seed, "key_writer", webhooksWrite=True)


def outbox(db: firestore.Client, event: dict[str, Any]) -> dict[str, Any]:
    path = ("apiProjects", "proj-1", "generations", event["generationId"], "events")
    return db.document(*path, event["eventType"]).get().to_dict() or {}


def configure(api: Api, key: Key, url: str, types: list[str] | None = None) -> str:
    types = types or ["generation.completed", FAILED_TYPE]
    answer = api.configure(key, mode="live", url=url, eventTypes=types)
    assert answer.status_code == 200, answer.get_json()
    return str(answer.get_json()["webhook"]["endpointId"])


def test_recover_makes_failed_and_skipped_of_the_window_pending_due_now(
    api: Api, writer: Key, webhooks_db: firestore.Client, receiver: Receiver
) -> None:
    db = webhooks_db
    since = ago(hours=6).isoformat()
    missing = api.recover(writer, mode="live", since=since)
    assert (missing.status_code, missing.get_json()["code"]) == (404, "webhook_not_configured")
    endpoint_id = configure(api, writer, receiver.url)
    assert endpoint_id == pair_endpoint_id("key_writer", "live")
    failed = seed_event(db, "key_writer", "g1", status="failed", created=ago(hours=5))
    skipped = seed_event(db, "key_writer", "g2", endpoint=False, created=ago(hours=4))
    delivered = seed_event(db, "key_writer", "g3", created=ago(hours=3))
    pending = seed_event(db, "key_writer", "g4", status="pending", created=ago(hours=2))
    not_taken = seed_event(db, "key_writer", "g5", status="failed", event_type="generation.queued")
    before = seed_event(db, "key_writer", "g6", status="failed", created=ago(hours=7))
    other_key = seed_event(db, "key_other", "g7", status="failed")

    started = datetime.now(UTC)
    answer = api.recover(writer, mode="live", since=since)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json() == {"recovered": 2}
    for event in (failed, skipped):
        stored = outbox(db, event)
        delivery = stored["deliveries"][endpoint_id]
        assert (delivery["status"], delivery["attempts"], delivery["trigger"]) == (
            "pending",
            0,
            "recover",
        )
        assert started - timedelta(seconds=5) <= stored["dueAt"] <= datetime.now(UTC)
        assert stored["deliveryStatus"] == "pending"
        assert stored["deliveryEndpointId"] == endpoint_id
    for event, status in ((delivered, "delivered"), (pending, "pending")):
        assert outbox(db, event)["deliveryStatus"] == status
    for event in (not_taken, before, other_key):
        assert outbox(db, event)["deliveryStatus"] == "failed"
    again = api.recover(writer, mode="live", since=since).get_json()
    assert again == {"recovered": 0}  # now pending: left alone

    listed = api.list_events(writer, status="pending").get_json()["events"]
    assert {e["eventId"] for e in listed} == {
        failed["eventId"],
        skipped["eventId"],
        pending["eventId"],
    }

    db.document("webhookEndpoints", endpoint_id).update({"disabled": True})
    disabled = api.recover(writer, mode="live", since=since)
    assert (disabled.status_code, disabled.get_json()["code"]) == (409, "webhook_disabled")


def test_resend_sends_again_synchronously_with_the_same_event_id_and_records_it(
    api: Api, writer: Key, webhooks_db: firestore.Client, receiver: Receiver
) -> None:
    db = webhooks_db
    event = seed_event(db, "key_writer", "g1", status="failed", created=ago(hours=1))
    body = {"eventId": event["eventId"]}
    unknown = api.resend(writer, eventId="evt_" + "1" * 32)
    assert (unknown.status_code, unknown.get_json()["code"]) == (404, "event_not_found")
    missing = api.resend(writer, **body)
    assert (missing.status_code, missing.get_json()["code"]) == (404, "webhook_not_configured")
    endpoint_id = configure(api, writer, receiver.url)

    receiver.behaviour = "status:500"
    failed = api.resend(writer, **body)
    assert failed.status_code == 200
    assert failed.get_json()["delivery"] == {
        "status": "failed",
        "httpStatus": 500,
        "error": failed.get_json()["delivery"]["error"],
    }
    assert outbox(db, event)["deliveryStatus"] == "failed"

    receiver.behaviour = "ok"
    sent = api.resend(writer, **body)
    answer = sent.get_json()
    assert sent.status_code == 200, answer
    assert {k: answer[k] for k in ("eventId", "eventType", "mode", "apiKeyId")} == {
        "eventId": event["eventId"],
        "eventType": "generation.completed",
        "mode": "live",
        "apiKeyId": "key_writer",
    }
    assert answer["svixMessageId"].startswith("msg_")
    assert answer["delivery"] == {"status": "delivered", "httpStatus": 204, "error": None}
    assert receiver.ids == [event["eventId"]] * 2
    assert json.loads(receiver.received[-1].body) == event["payload"]
    stored = outbox(db, event)
    assert stored["deliveryStatus"] == "delivered" and "dueAt" not in stored
    assert stored["deliveries"][endpoint_id]["status"] == "delivered"
    assert stored["deliveredAt"] is not None and "deliveringUntil" not in stored

    attempts = api.list_attempts(writer, **body).get_json()["attempts"]
    assert [(a["trigger"], a["status"], a["httpStatus"]) for a in attempts] == [
        ("resend", "failed", 500),
        ("resend", "delivered", 204),
    ]
    assert all(a["endpointId"] == endpoint_id for a in attempts)
    records = [s.to_dict() for s in db.collection("webhookAttempts").get()]
    assert all(r["expiresAt"] > datetime.now(UTC) + timedelta(days=29) for r in records)


def test_resend_refuses_a_disabled_endpoint_and_another_callers_live_lease(
    api: Api, writer: Key, webhooks_db: firestore.Client, receiver: Receiver
) -> None:
    db = webhooks_db
    event = seed_event(db, "key_writer", "g1", status="pending")
    endpoint_id = configure(api, writer, receiver.url)
    path = ("apiProjects", "proj-1", "generations", "g1", "events", event["eventType"])
    lease = {"deliveringUntil": datetime.now(UTC) + timedelta(minutes=1), "deliveringBy": "relay"}
    db.document(*path).update(lease)
    busy = api.resend(writer, eventId=event["eventId"])
    assert (busy.status_code, busy.get_json()["code"]) == (409, "delivery_in_progress")
    assert receiver.received == []
    db.document(*path).update({"deliveringUntil": datetime.now(UTC) - timedelta(seconds=1)})
    assert api.resend(writer, eventId=event["eventId"]).status_code == 200  # an expired lease
    stored = db.document(*path).get().to_dict() or {}
    assert stored["deliveryStatus"] == "delivered" and "dueAt" not in stored  # not scheduled
    db.document("webhookEndpoints", endpoint_id).update({"disabled": True})
    disabled = api.resend(writer, eventId=event["eventId"])
    assert (disabled.status_code, disabled.get_json()["code"]) == (409, "webhook_disabled")


def test_a_test_event_is_logged_with_its_attempt_and_listed_in_its_mode(
    api: Api, writer: Key, webhooks_db: firestore.Client, receiver: Receiver
) -> None:
    answer = api.configure(writer, mode="test", url=receiver.url, eventTypes=[FAILED_TYPE])
    endpoint_id = answer.get_json()["webhook"]["endpointId"]
    receiver.behaviour = "status:503"
    sent = api.send_test(writer, eventType=FAILED_TYPE, mode="test").get_json()
    assert sent["delivery"]["status"] == "failed"
    [entry] = api.list_events(writer, mode="test").get_json()["events"]
    assert entry["eventId"] == sent["eventId"] and entry["test"] is True
    assert entry["delivery"]["status"] == "failed"
    assert entry["delivery"]["endpointId"] == endpoint_id
    assert api.list_events(writer).get_json()["events"] == []  # not in live mode
    [attempt] = api.list_attempts(writer, eventId=sent["eventId"], mode="test").get_json()[
        "attempts"
    ]
    assert (attempt["trigger"], attempt["status"], attempt["httpStatus"]) == ("test", "failed", 503)
    stored = webhooks_db.document("webhookTests", "key_writer", "events", sent["eventId"]).get()
    assert stored.to_dict()["expiresAt"] > datetime.now(UTC) + timedelta(days=29)

    receiver.behaviour = "ok"
    recovered = api.recover(writer, mode="test", since=ago(hours=1).isoformat()).get_json()
    assert recovered == {"recovered": 1}  # a failed test event, in test mode


def test_recovered_events_are_sent_by_the_relay_in_order_as_recover_attempts(
    api: Api, writer: Key, webhooks_db: firestore.Client, receiver: Receiver
) -> None:
    from diffio_progress.functions.config import Settings
    from diffio_progress.functions.events.pinned_post import PinnedPoster
    from diffio_progress.functions.relay.handler import build_relay_handler
    from tests.functions.events.harness import run_relay
    from tests.project import LOCAL_KEY, TEST_PROJECT

    db = webhooks_db
    types = ["generation.queued", "generation.processing", "generation.completed"]
    seeded = [
        seed_event(db, "key_writer", "g1", event_type=t, created=ago(minutes=30 - i), **extra)
        for i, (t, extra) in enumerate(
            zip(
                types,
                [{"status": "failed"}, {"endpoint": False}, {"status": "failed"}],
                strict=True,
            )
        )
    ]
    configure(api, writer, receiver.url, types)
    answer = api.recover(writer, mode="live", since=ago(hours=1).isoformat()).get_json()
    assert answer == {"recovered": 3}
    settings = Settings(
        project=TEST_PROJECT,
        webhook_sink="direct",
        webhook_allow_private_urls=True,
        webhook_secrets_local_key=LOCAL_KEY,  # configure sealed the secret with it
    )
    relay = build_relay_handler(settings, poster=PinnedPoster(allow_private=True))
    counts = run_relay(relay)
    assert (counts["due"], counts["delivered"]) == (3, 3)
    assert receiver.ids == [e["eventId"] for e in seeded]  # rank order, nothing twice
    for event in seeded:
        [attempt] = api.list_attempts(writer, eventId=event["eventId"]).get_json()["attempts"]
        assert (attempt["trigger"], attempt["status"]) == ("recover", "delivered")
    listed = api.list_events(writer, status="delivered").get_json()["events"]
    assert len(listed) == 3
    assert run_relay(relay)["due"] == 0


def test_no_answer_attempt_or_log_line_carries_a_secret_a_key_or_the_urls_query(
    api: Api,
    writer: Key,
    webhooks_db: firestore.Client,
    receiver: Receiver,
    no_api_key_in_logs: LogCapture,
) -> None:
    token = "qs_" + secrets.token_hex(12)
    MINTED_SECRETS.add(token)  # the session's log scan looks for it too
    url = f"{receiver.url}?token={token}"
    secret = api.configure(writer, mode="live", url=url, eventTypes=[FAILED_TYPE])
    signing = secret.get_json()["webhook"]["signingSecret"]
    event = seed_event(webhooks_db, "key_writer", "g1", event_type=FAILED_TYPE, status="failed")
    receiver.behaviour = "status:500"
    answers = [
        api.send_test(writer, eventType=FAILED_TYPE, mode="live"),
        api.resend(writer, eventId=event["eventId"]),
        api.recover(writer, mode="live", since=ago(hours=1).isoformat()),
        api.list_events(writer),
        api.list_attempts(writer, eventId=event["eventId"]),
    ]
    assert receiver.received and token in receiver.received[0].path  # it was sent there
    text = "\n".join(a.get_data(as_text=True) for a in answers)
    text += "\n" + "\n".join(no_api_key_in_logs.lines)
    for leaked in (token, writer.key, *encodings(signing)):
        assert leaked not in text
    stored = [s.to_dict() for s in webhooks_db.collection("webhookAttempts").get()]
    stored += [s.to_dict() for s in webhooks_db.collection_group("events").get()]
    assert len(stored) == 5 and token not in repr(stored)  # 2 events, 3 attempts
