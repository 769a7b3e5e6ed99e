"""The svix sink: the real ``svix`` library against a local stand-in of the routes it calls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from diffio_progress.core.events import (
    COMPLETED_EVENT,
    PROCESSING_EVENT,
    QUEUED_EVENT,
    outbox_path,
)
from diffio_progress.functions.config import Settings
from diffio_progress.functions.events.handler import EventHandler
from diffio_progress.functions.events.wiring import build_sink
from diffio_progress.functions.firestore import FirestoreConnection
from tests.functions.events.harness import (
    GENERATION_ID,
    KEY_ID,
    PROJECT_ID,
    Harness,
    Shifted,
    Writes,
    relay_handler,
    run_relay,
)
from tests.functions.events.svix_standin import SvixStandIn
from tests.log_records import Records


def through_svix(harness: Harness, svix: SvixStandIn, token: str | None = None) -> EventHandler:
    return harness.handler(
        webhook_sink="svix", svix_api_token=token or svix.token, svix_server_url=svix.url
    )


def test_one_application_per_key_and_one_message_per_event_keyed_by_its_id(
    writes: Writes, harness: Harness, svix: SvixStandIn
) -> None:
    handler = through_svix(harness, svix)
    harness.send(handler, writes.generation())
    harness.send(handler, writes.job("preProcessing", "running"))
    harness.send(handler, writes.job("preProcessing", "complete", 100))
    harness.send(handler, writes.job("inference", "complete", 100))
    assert list(svix.apps) == [KEY_ID]
    assert svix.apps[KEY_ID]["name"] == KEY_ID
    outbox = harness.outbox()
    assert [(m["eventType"], m["eventId"], m["payload"]) for m in svix.messages] == [
        (t, outbox[t]["eventId"], outbox[t]["payload"])
        for t in (QUEUED_EVENT, PROCESSING_EVENT, COMPLETED_EVENT)
    ]
    message_calls = [c for c in svix.calls if c[1].endswith("/msg?with_content=false")]
    assert [h["idempotency-key"] for _, _, h in message_calls] == [
        m["eventId"] for m in svix.messages
    ]
    # The application was created once, then remembered by the instance.
    assert sum(1 for _, target, _ in svix.calls if "get_if_exists" in target) == 1
    assert all(doc["deliveredAt"] is not None for doc in outbox.values())


def test_a_failed_hand_off_is_retried_by_the_relay_with_the_same_event_id_never_twice(
    writes: Writes, harness: Harness, svix: SvixStandIn
) -> None:
    handler = through_svix(harness, svix)
    svix.fail_messages_with = 500
    harness.send(handler, writes.generation())  # scheduled: the call succeeds
    doc = harness.event_doc(QUEUED_EVENT)
    assert doc["attempts"] == 1 and doc["deliveries"]["svix"]["status"] == "pending"
    assert "HTTP 500" in harness.attempt_errors()
    event_id = doc["eventId"]

    svix.fail_messages_with = None
    settings = {"svix_api_token": svix.token, "svix_server_url": svix.url}
    clock = Shifted(timedelta(seconds=6))
    relay = relay_handler(harness, clock, webhook_sink="svix", **settings)
    assert run_relay(relay)["delivered"] == 1
    assert [m["eventId"] for m in svix.messages] == [event_id]

    # Svix took it but the sender died before marking it: the retry is no second message.
    ref = harness.webhooks_db.document(*outbox_path(PROJECT_ID, GENERATION_ID, QUEUED_EVENT))
    ref.update({"deliveries.svix.status": "pending", "dueAt": datetime.now(UTC)})
    assert run_relay(relay)["delivered"] == 1
    assert [m["eventId"] for m in svix.messages] == [event_id]
    assert harness.event_doc(QUEUED_EVENT)["deliveredAt"] is not None


def test_a_wrong_token_is_our_failure_and_never_logged(
    writes: Writes, harness: Harness, svix: SvixStandIn, event_logs: Records
) -> None:
    wrong = "testsk_wrong_" + svix.token[-8:]
    harness.send(through_svix(harness, svix, token=wrong), writes.generation())
    assert svix.messages == []
    [attempt] = [r.fields for r in event_logs.records if "failureKind" in getattr(r, "fields", {})]
    assert attempt["failureKind"] == "ours" and "HTTP 401" in attempt["error"]
    assert all(wrong not in r.getMessage() for r in event_logs.records)


def test_the_svix_sink_needs_its_token() -> None:
    settings = Settings(webhook_sink="svix")
    with pytest.raises(ValueError, match="SVIX_API_TOKEN"):
        build_sink(settings, FirestoreConnection(1.0))
