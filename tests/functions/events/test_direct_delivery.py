"""The direct sink: real deliveries to local receivers, each verified with the official SDK."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from diffio import DiffioApiError, DiffioClient

from diffio_progress.core.events import COMPLETED_EVENT, PROCESSING_EVENT, QUEUED_EVENT
from diffio_progress.functions.events.handler import EventHandler
from diffio_progress.functions.events.pinned_post import PinnedPoster
from tests.functions.events.harness import (
    KEY_ID,
    Harness,
    Shifted,
    Writes,
    new_secret,
    relay_handler,
    run_relay,
)
from tests.functions.events.receivers import Received, Receiver
from tests.log_records import Records


def direct(harness: Harness, deadline: float = 10.0, **poster: Any) -> EventHandler:
    poster.setdefault("allow_private", True)
    return harness.handler(
        PinnedPoster(deadline_seconds=deadline, **poster),
        webhook_sink="direct",
        webhook_allow_private_urls=poster["allow_private"],
    )


def verify(received: Received, secret: str) -> Any:
    """What a client's server does with a delivery: the SDK checks it and parses it."""
    client = DiffioClient(apiKey="not-used", baseUrl="http://127.0.0.1:9/v1")
    return client.webhooks.verify_signature(
        payload=received.body, headers=received.headers, secret=secret
    )


def test_every_event_reaches_the_endpoint_and_the_sdk_verifies_it(
    writes: Writes, harness: Harness, receiver: Receiver
) -> None:
    endpoint_id, secret = harness.endpoint(receiver.url)
    handler = direct(harness)
    for write in (
        lambda: writes.generation(transcription={"status": "pending"}),
        lambda: writes.job("preProcessing", "running", 5),
        lambda: writes.job("preProcessing", "running", 50),
        lambda: writes.job("preProcessing", "complete", 100),
        lambda: writes.job("inference", "complete", 100),
    ):
        harness.send(handler, write())
    events = [verify(r, secret) for r in receiver.received]
    assert [e.eventType for e in events] == [QUEUED_EVENT, PROCESSING_EVENT, COMPLETED_EVENT]
    outbox = harness.outbox()
    for event, received in zip(events, receiver.received, strict=True):
        stored = outbox[event.eventType]
        assert event.eventId == stored["eventId"] == received.headers["svix-id"]
        assert json.loads(received.body) == stored["payload"]
        assert (event.apiKeyId, event.apiProjectId, event.generationId) == (
            KEY_ID,
            "proj-1",
            "gen-1",
        )
        assert event.modelKey == "diffio-4.6-pro" and event.hasVideo is False
        assert event.transcription.status == "pending"
        assert received.headers["content-type"] == "application/json"
        assert stored["deliveredAt"] is not None
        assert (stored["deliveredTo"], stored["attempts"]) == ([endpoint_id], 1)
    assert events[-1].status == "complete" and events[-1].error is None
    # The signature is what makes it verify: another secret does not.
    with pytest.raises(DiffioApiError):
        verify(receiver.received[0], new_secret())


def test_endpoints_receive_their_event_types_and_disabled_ones_nothing(
    writes: Writes, harness: Harness, receivers: Any
) -> None:
    everything, finished, off = receivers(), receivers(), receivers()
    harness.endpoint(everything.url)
    harness.endpoint(finished.url, eventTypes=[COMPLETED_EVENT, "generation.failed"])
    harness.endpoint(off.url, disabled=True)
    handler = direct(harness)
    harness.send(handler, writes.generation())
    harness.send(handler, writes.job("preProcessing", "complete", 100))
    harness.send(handler, writes.job("inference", "complete", 100))
    assert len(everything.received) == 3
    assert [json.loads(r.body)["eventType"] for r in finished.received] == [COMPLETED_EVENT]
    assert off.received == []


def test_malformed_endpoints_are_skipped_with_one_warning_naming_only_their_id(
    writes: Writes, harness: Harness, receiver: Receiver, event_logs: Records
) -> None:
    good_id, _ = harness.endpoint(receiver.url)
    bad = {
        harness.endpoint("not a url")[0]: None,
        harness.endpoint("ftp://127.0.0.1/x")[0]: None,
        harness.endpoint(receiver.url, secret="whsec_tooshort")[0]: "whsec_tooshort",
        harness.endpoint(receiver.url, secret="s3cr3t-without-prefix")[0]: "s3cr3t-without-prefix",
    }
    harness.webhooks_db.document("webhookEndpoints", "ep_nosecret").set(
        {"apiKeyId": KEY_ID, "url": receiver.url}
    )
    bad["ep_nosecret"] = None
    outcome = harness.send(direct(harness), writes.generation())
    assert outcome.fields["delivered"] == [QUEUED_EVENT]
    assert len(receiver.received) == 1
    warnings = event_logs.at("WARNING")
    assert sorted(r.fields["endpointId"] for r in warnings) == sorted(bad)
    for record in warnings:
        endpoint_id = record.fields["endpointId"]
        assert endpoint_id in record.getMessage() and good_id not in record.getMessage()
        secret = bad[endpoint_id]
        assert secret is None or secret not in record.getMessage()
    assert harness.event_doc(QUEUED_EVENT)["deliveredTo"] == [good_id]


def test_plain_http_and_private_hosts_are_refused_unless_allowed(
    writes: Writes, harness: Harness, receiver: Receiver, event_logs: Records
) -> None:
    endpoint_id, _ = harness.endpoint(receiver.url)  # http://127.0.0.1:port
    outcome = harness.send(direct(harness, allow_private=False), writes.generation())
    # Refused and logged, not retried: the call succeeds and nothing was sent.
    assert outcome.outcome == f"recorded {QUEUED_EVENT}"
    assert receiver.received == []
    assert [r.fields["endpointId"] for r in event_logs.at("WARNING")] == [endpoint_id]
    doc = harness.event_doc(QUEUED_EVENT)
    assert doc["deliveries"][endpoint_id]["status"] == "skipped" and "dueAt" not in doc


def test_a_generation_without_an_api_key_id_records_but_delivers_nothing(
    writes: Writes, harness: Harness, receiver: Receiver, event_logs: Records
) -> None:
    harness.endpoint(receiver.url)
    outcome = harness.send(direct(harness), writes.generation(apiKeyId=...))
    assert outcome.outcome == f"recorded {QUEUED_EVENT}"
    assert receiver.received == []
    assert len(event_logs.at("WARNING")) == 1
    assert "no apiKeyId" in event_logs.at("WARNING")[0].getMessage()
    doc = harness.event_doc(QUEUED_EVENT)
    assert doc["payload"]["apiKeyId"] is None and doc["deliveredAt"] is None


@pytest.mark.parametrize("behaviour", ["hang", "trickle", "status:500", "redirect", "close"])
def test_a_misbehaving_receiver_is_scheduled_and_the_relay_delivers_the_same_event(
    writes: Writes, harness: Harness, receivers: Any, behaviour: str
) -> None:
    receiver, elsewhere = receivers(behaviour), receivers()
    receiver.redirect_to = elsewhere.url
    _, secret = harness.endpoint(receiver.url)
    handler = direct(harness, deadline=1.0)
    event = writes.generation()
    # The call succeeds: the delivery is scheduled, Eventarc retries nothing.
    assert harness.send(handler, event).outcome == f"recorded {QUEUED_EVENT}"
    if behaviour in ("hang", "trickle"):
        # Bounded by the delivery's deadline, not by the receiver's patience.
        assert "no answer within 1 s" in harness.attempt_errors()
    doc = harness.event_doc(QUEUED_EVENT)
    assert (doc["deliveredAt"], doc["deliveredTo"], doc["attempts"]) == (None, [], 1)
    assert elsewhere.received == []  # redirects are never followed

    # The receiver is healthy again; the relay's retry is the same event.
    receiver.behaviour = "ok"
    relay = relay_handler(harness, Shifted(timedelta(seconds=6)))
    assert run_relay(relay)["delivered"] == 1
    assert receiver.ids == [doc["eventId"], doc["eventId"]]
    assert verify(receiver.received[-1], secret).eventId == doc["eventId"]
    doc = harness.event_doc(QUEUED_EVENT)
    assert doc["deliveredAt"] is not None and doc["attempts"] == 2


def test_a_retry_reaches_only_the_endpoints_that_failed_and_keeps_rank_order(
    writes: Writes, harness: Harness, receivers: Any
) -> None:
    healthy, flaky = receivers(), receivers("status:503")
    healthy_id, _ = harness.endpoint(healthy.url)
    flaky_id, _ = harness.endpoint(flaky.url)
    handler = direct(harness)
    harness.send(handler, writes.generation())
    assert harness.event_doc(QUEUED_EVENT)["deliveredTo"] == [healthy_id]
    # The next status change: queued is still owed to one endpoint, and goes first.
    harness.send(handler, writes.job("preProcessing", "running"))
    assert harness.event_doc(PROCESSING_EVENT)["deliveredTo"] == [healthy_id]
    assert len(flaky.received) == 1  # processing waits behind the undelivered queued
    flaky.behaviour = "ok"
    relay = relay_handler(harness, Shifted(timedelta(seconds=6)))
    assert run_relay(relay)["delivered"] == 2
    kinds = [json.loads(r.body)["eventType"] for r in flaky.received]
    assert kinds == [QUEUED_EVENT, QUEUED_EVENT, PROCESSING_EVENT]
    assert [json.loads(r.body)["eventType"] for r in healthy.received] == [
        QUEUED_EVENT,
        PROCESSING_EVENT,
    ]
    assert sorted(harness.event_doc(QUEUED_EVENT)["deliveredTo"]) == sorted([healthy_id, flaky_id])
