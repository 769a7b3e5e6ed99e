"""Durable delivery (delivery-contract.md §1-3) through the event function and the relay.

Time passes by hand (``Shifted``): the schedule's hours go by without a sleep.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from google.cloud import firestore

from diffio_progress.bench.rpc_count import reads
from diffio_progress.core.events import PROCESSING_EVENT, QUEUED_EVENT, outbox_path
from diffio_progress.functions.events.handler import EventHandler
from diffio_progress.functions.events.pinned_post import PinnedPoster
from tests.functions.events.harness import (
    PROJECT_ID,
    Harness,
    Shifted,
    Writes,
    relay_handler,
    run_relay,
)
from tests.functions.events.receivers import Receiver
from tests.log_records import Records

NOTHING = {"due": 0, "delivered": 0, "failed": 0, "retried": 0}


def direct(harness: Harness, **settings: Any) -> EventHandler:
    poster = PinnedPoster(allow_private=True, deadline_seconds=2.0)
    return harness.handler(
        poster, webhook_sink="direct", webhook_allow_private_urls=True, **settings
    )


def attempts(webhooks_db: firestore.Client) -> list[dict[str, Any]]:
    found = [s.to_dict() or {} for s in webhooks_db.collection("webhookAttempts").get()]
    return sorted(found, key=lambda a: a["at"])


def delivery(harness: Harness, event_type: str, endpoint_id: str) -> dict[str, Any]:
    delivery: dict[str, Any] = harness.event_doc(event_type)["deliveries"][endpoint_id]
    return delivery


def test_a_refused_delivery_succeeds_the_call_and_the_relay_follows_the_schedule(
    writes: Writes, harness: Harness, receiver: Receiver, webhooks_db: firestore.Client
) -> None:
    receiver.behaviour = "status:500"
    receiver.answer_body = b"x" * 5000
    endpoint_id, _ = harness.endpoint(receiver.url)
    schedule = {"retry_schedule": (timedelta(hours=1), timedelta(hours=2))}
    outcome = harness.send(direct(harness, **schedule), writes.generation())
    assert outcome.outcome == f"recorded {QUEUED_EVENT}"  # no exception: Eventarc retries nothing
    doc = harness.event_doc(QUEUED_EVENT)
    first = delivery(harness, QUEUED_EVENT, endpoint_id)
    assert (first["status"], first["attempts"], first["lastHttpStatus"]) == ("pending", 1, 500)
    assert doc["dueAt"] == first["nextAttemptAt"]
    assert timedelta(minutes=59) < first["nextAttemptAt"] - first["lastAttemptAt"]
    [attempt] = attempts(webhooks_db)
    assert (attempt["trigger"], attempt["status"], attempt["failureKind"]) == (
        "event",
        "failed",
        "endpoint",
    )
    assert attempt["response"] == "x" * 1024 and attempt["eventId"] == doc["eventId"]

    clock = Shifted(timedelta(minutes=30))
    relay = relay_handler(harness, clock, **schedule)
    assert run_relay(relay) == NOTHING  # not due yet
    clock.offset = timedelta(minutes=61)
    assert run_relay(relay) == {**NOTHING, "due": 1, "retried": 1}
    assert delivery(harness, QUEUED_EVENT, endpoint_id)["attempts"] == 2
    receiver.behaviour = "ok"
    clock.offset = timedelta(minutes=61 + 119)
    assert run_relay(relay) == NOTHING  # the second entry (2 h) has not passed
    clock.offset = timedelta(minutes=61 + 121)
    assert run_relay(relay) == {**NOTHING, "due": 1, "delivered": 1}
    doc = harness.event_doc(QUEUED_EVENT)
    assert "dueAt" not in doc and doc["deliveredAt"] is not None
    assert doc["deliveryStatus"] == "delivered" or doc["deliveryEndpointId"] is None
    assert receiver.ids == [doc["eventId"]] * 3
    assert [a["trigger"] for a in attempts(webhooks_db)] == ["event", "relay", "relay"]


def test_retry_after_pushes_the_next_attempt_and_the_schedule_runs_out(
    writes: Writes, harness: Harness, receiver: Receiver
) -> None:
    receiver.behaviour = "status:503"
    receiver.answer_headers = {"Retry-After": "7200"}
    endpoint_id, _ = harness.endpoint(receiver.url)
    schedule = {"retry_schedule": (timedelta(seconds=5),)}  # two attempts in all
    harness.send(direct(harness, **schedule), writes.generation())
    first = delivery(harness, QUEUED_EVENT, endpoint_id)
    assert first["nextAttemptAt"] - first["lastAttemptAt"] >= timedelta(hours=2)
    clock = Shifted(timedelta(hours=1))
    relay = relay_handler(harness, clock, **schedule)
    assert run_relay(relay) == NOTHING  # the schedule's 5 s passed; Retry-After's 2 h did not
    clock.offset = timedelta(hours=2, minutes=1)
    assert run_relay(relay) == {**NOTHING, "due": 1, "failed": 1}
    doc = harness.event_doc(QUEUED_EVENT)
    assert doc["deliveries"][endpoint_id]["status"] == "failed" and "dueAt" not in doc
    clock.offset = timedelta(days=3)
    assert run_relay(relay) == NOTHING and len(receiver.received) == 2


def test_a_410_disables_the_endpoint_and_later_events_are_skipped_until_configured(
    writes: Writes, harness: Harness, receiver: Receiver, event_logs: Records
) -> None:
    receiver.behaviour = "status:410"
    endpoint_id, _ = harness.endpoint(receiver.url)
    handler = direct(harness)
    harness.send(handler, writes.generation())
    assert delivery(harness, QUEUED_EVENT, endpoint_id)["status"] == "failed"
    endpoint = harness.webhooks_db.document("webhookEndpoints", endpoint_id).get().to_dict()
    assert endpoint and (endpoint["disabled"], endpoint["disabledReason"]) == (True, "gone")
    [warning] = [r for r in event_logs.at("WARNING") if "disabled" in r.getMessage()]
    assert endpoint_id in warning.getMessage() and "gone" in warning.getMessage()
    receiver.behaviour = "ok"
    harness.send(handler, writes.job("inference", "running"))
    assert delivery(harness, PROCESSING_EVENT, endpoint_id)["status"] == "skipped"
    assert len(receiver.received) == 1


def test_an_endpoint_failing_for_the_limit_is_disabled_and_its_pending_deliveries_skipped(
    writes: Writes, harness: Harness, receiver: Receiver
) -> None:
    receiver.behaviour = "status:500"
    endpoint_id, _ = harness.endpoint(receiver.url)
    settings = {"retry_schedule": (timedelta(hours=1),) * 5, "webhook_disable_after_hours": 2}
    harness.send(direct(harness, **settings), writes.generation())
    ref = harness.webhooks_db.document("webhookEndpoints", endpoint_id)
    assert isinstance((ref.get().to_dict() or {})["failingSince"], datetime)
    clock = Shifted(timedelta(hours=1, minutes=1))
    relay = relay_handler(harness, clock, **settings)
    assert run_relay(relay)["retried"] == 1
    assert (ref.get().to_dict() or {}).get("disabled") is None  # 1 h of failures: not yet
    clock.offset = timedelta(hours=2, minutes=2)
    assert run_relay(relay)["retried"] == 1
    assert (ref.get().to_dict() or {})["disabledReason"] == "failing"
    receiver.behaviour = "ok"
    clock.offset = timedelta(hours=3, minutes=3)
    assert run_relay(relay) == {**NOTHING, "due": 1}  # skipped: nothing sent
    assert delivery(harness, QUEUED_EVENT, endpoint_id)["status"] == "skipped"
    assert len(receiver.received) == 3


def test_rank_order_holds_across_the_event_function_and_the_relay(
    writes: Writes, harness: Harness, receiver: Receiver
) -> None:
    receiver.behaviour = "status:503"
    endpoint_id, _ = harness.endpoint(receiver.url)
    handler = direct(harness)
    harness.send(handler, writes.generation())
    receiver.behaviour = "ok"
    # processing is recorded while queued waits for its retry: it waits behind it.
    harness.send(handler, writes.job("inference", "running"))
    queued = delivery(harness, QUEUED_EVENT, endpoint_id)
    processing = delivery(harness, PROCESSING_EVENT, endpoint_id)
    assert processing["attempts"] == 0 and processing["nextAttemptAt"] == queued["nextAttemptAt"]
    assert len(receiver.received) == 1
    relay = relay_handler(harness, Shifted(timedelta(seconds=6)))
    assert run_relay(relay) == {**NOTHING, "due": 2, "delivered": 2}
    kinds = [json.loads(r.body)["eventType"] for r in receiver.received]
    assert kinds == [QUEUED_EVENT, QUEUED_EVENT, PROCESSING_EVENT]


def test_two_relays_at_once_never_send_twice_and_a_dead_lease_strands_nothing(
    writes: Writes, harness: Harness, receiver: Receiver
) -> None:
    receiver.behaviour = "status:500"
    harness.endpoint(receiver.url)
    handler = direct(harness)
    generations = [f"gen-{i}" for i in range(6)]
    for generation in generations:
        harness.send(handler, Writes(writes.db, generation_id=generation).generation())
    # One relay died mid-delivery of gen-0: its lease (5 minutes long) outlives it.
    ref = harness.webhooks_db.document(*outbox_path(PROJECT_ID, "gen-0", QUEUED_EVENT))
    ref.update({"deliveringUntil": datetime.now(UTC) + timedelta(minutes=5)})
    receiver.behaviour = "ok"
    clock = Shifted(timedelta(seconds=6))
    relays = [relay_handler(harness, clock) for _ in range(2)]
    answers: list[dict[str, int]] = []
    threads = [threading.Thread(target=lambda r=r: answers.append(run_relay(r))) for r in relays]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(a["delivered"] for a in answers) == 5  # gen-0's live lease is never retaken
    clock.offset = timedelta(minutes=6)
    assert run_relay(relays[0])["delivered"] == 1
    sent = receiver.ids
    assert len(set(sent)) == 6 and len(sent) == 12  # each: one failed, one delivered attempt


def test_the_relays_reads_grow_with_what_is_due_not_with_what_is_stored(
    writes: Writes, harness: Harness, receiver: Receiver
) -> None:
    stored = harness.webhooks_db.batch()
    for i in range(50):  # delivered events: no dueAt, so outside the relay's index
        ref = harness.webhooks_db.document(*outbox_path(PROJECT_ID, f"old-{i}", QUEUED_EVENT))
        stored.set(ref, {"eventId": f"evt_{i:032x}", "payload": {}, "deliveries": {}})
    stored.commit()
    relay = relay_handler(harness, Shifted(timedelta(seconds=6)))
    harness.counter.reset()
    assert run_relay(relay) == NOTHING
    assert reads(harness.counter.snapshot()) == 1  # an empty query is billed as one read
    receiver.behaviour = "status:500"
    harness.endpoint(receiver.url)
    harness.send(direct(harness), writes.generation())
    receiver.behaviour = "ok"
    harness.counter.reset()
    assert run_relay(relay)["delivered"] == 1
    # The due event, and the key's one endpoint.
    assert reads(harness.counter.snapshot()) == 2


def test_main_py_serves_the_relay_post_only_answering_its_counters(
    writes: Writes, harness: Harness, receiver: Receiver, monkeypatch: Any
) -> None:
    import functions_framework

    from diffio_progress.functions.relay.handler import reset_default_relay_handler
    from tests.project import ROOT

    receiver.behaviour = "status:500"
    harness.endpoint(receiver.url)
    harness.send(direct(harness, retry_schedule=(timedelta(milliseconds=1),)), writes.generation())
    receiver.behaviour = "ok"
    monkeypatch.setenv("WEBHOOK_SINK", "direct")
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_URLS", "true")
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE", "1ms")
    reset_default_relay_handler()
    app = functions_framework.create_app(
        target="relay_pending_deliveries", source=str(ROOT / "main.py")
    )
    client = app.test_client()
    try:
        assert client.get("/").status_code == 405
        answer = client.post("/")
        assert answer.status_code == 200
        assert answer.get_json() == {**NOTHING, "due": 1, "delivered": 1}
    finally:
        reset_default_relay_handler()
    assert len(receiver.received) == 2


def test_a_stray_due_document_outside_any_outbox_never_stops_the_relay(
    writes: Writes, harness: Harness, receiver: Receiver, webhooks_db: firestore.Client
) -> None:
    receiver.behaviour = "status:500"
    endpoint_id, _ = harness.endpoint(receiver.url)
    harness.send(direct(harness), writes.generation())  # queued: failed once, due in 5 s
    # A test event's document is in the `events` collection group too; it never has dueAt,
    # but one that did (an operator's edit, a bug) must not fail every pass of the relay.
    past = datetime.now(UTC) - timedelta(hours=1)
    webhooks_db.document("webhookTests", "key_x", "events", "evt_stray").set({"dueAt": past})
    receiver.behaviour = "ok"
    counts = run_relay(relay_handler(harness, Shifted(timedelta(minutes=1))))
    assert counts == {**NOTHING, "due": 1, "delivered": 1}
    assert delivery(harness, QUEUED_EVENT, endpoint_id)["status"] == "delivered"
