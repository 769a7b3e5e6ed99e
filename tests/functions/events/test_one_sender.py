"""One sender at a time: racing writes, duplicate CloudEvents: deliver each event once, in order."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from google.cloud import firestore

from diffio_progress.core.events import (
    COMPLETED_EVENT,
    PROCESSING_EVENT,
    QUEUED_EVENT,
    RANKS,
    outbox_path,
)
from diffio_progress.functions.events.handler import EventHandler
from diffio_progress.functions.events.pinned_post import PinnedPoster
from tests.functions.events.harness import (
    GENERATION_ID,
    PROJECT_ID,
    Event,
    Harness,
    Shifted,
    Writes,
    relay_handler,
    run_relay,
)
from tests.functions.events.receivers import Receiver
from tests.races import race


def direct(harness: Harness) -> EventHandler:
    return harness.handler(
        PinnedPoster(allow_private=True, deadline_seconds=5.0),
        webhook_sink="direct",
        webhook_allow_private_urls=True,
    )


def eventarc(harness: Harness, handler: EventHandler, event: Event) -> str:
    """Deliver ``event`` as Eventarc does; a call never fails for a delivery now."""
    return harness.send(handler, event).outcome


def received(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in receiver.received]


def later(seconds: float, call: Callable[[], str]) -> str:
    time.sleep(seconds)
    return call()


def test_racing_writes_and_duplicate_events_deliver_each_event_once_in_rank_order(
    db: firestore.Client, seed: Any, harness: Harness, receivers: Callable[..., Receiver]
) -> None:
    # A receiver that takes a moment to answer, as most do: deliveries overlap.
    receiver = receivers("slow:0.3")
    harness.endpoint(receiver.url)
    instances = [direct(harness) for _ in range(3)]
    generations = [f"gen-burst-{n}" for n in range(6)]
    for generation in generations:
        seed.project(PROJECT_ID, "user-1", has_video=False)
        writes = Writes(db, PROJECT_ID, generation)
        # A fast dispatcher: the generation and its first job writes land together, and
        # Eventarc hands each write to several instances (a duplicate, or a retry).
        created = writes.generation()
        started = writes.job("preProcessing", "running", 5)
        calls = [
            partial(later, 0.1 * n, partial(eventarc, harness, h, e))
            for e in (created, started)
            for n, h in enumerate(instances)
        ]
        race(*calls)
        writes.job("preProcessing", "complete", 100)
        done = writes.job("inference", "complete", 100)
        race(
            *[
                partial(later, 0.1 * n, partial(eventarc, harness, h, done))
                for n, h in enumerate(instances)
            ]
        )

    # What a racing call left to a lease holder that then failed, the relay sends later.
    run_relay(relay_handler(harness, Shifted(timedelta(minutes=2)), PinnedPoster(True, 5.0)))
    payloads = received(receiver)
    copies = Counter(p["eventId"] for p in payloads)
    assert [event_id for event_id, n in copies.items() if n > 1] == []
    for generation in generations:
        kinds = [p["eventType"] for p in payloads if p["generationId"] == generation]
        assert kinds[-1] == COMPLETED_EVENT
        assert [RANKS[k] for k in kinds] == sorted(set(RANKS[k] for k in kinds)), kinds
        outbox = harness.outbox(PROJECT_ID, generation)
        assert all(doc["deliveredAt"] is not None for doc in outbox.values())
        assert sorted(kinds) == sorted(outbox)


def lease(db: firestore.Client, event_type: str, until: datetime, by: str) -> None:
    ref = db.document(*outbox_path(PROJECT_ID, GENERATION_ID, event_type))
    ref.update({"deliveringUntil": until, "deliveringBy": by})


def test_a_live_lease_is_never_retaken_not_even_by_the_same_cloud_event(
    db: firestore.Client, writes: Writes, harness: Harness, receiver: Receiver
) -> None:
    endpoint_id, _ = harness.endpoint(receiver.url)
    handler = direct(harness)
    receiver.behaviour = "status:503"
    harness.send(handler, writes.generation())  # recorded; its delivery scheduled
    receiver.behaviour = "ok"
    started = writes.job("preProcessing", "running", 5)
    ce_id = started[0]["ce-id"]
    # Another call (or this very CloudEvent, delivered twice) is mid-delivery of queued.
    lease(harness.webhooks_db, QUEUED_EVENT, datetime.now(UTC) + timedelta(minutes=5), ce_id)

    # The call succeeds (delivery is ours, not Eventarc's) and sends nothing ahead of queued.
    assert harness.send(handler, started).outcome == f"recorded {PROCESSING_EVENT}"
    assert len(receiver.received) == 1
    assert harness.event_doc(PROCESSING_EVENT)["deliveries"][endpoint_id]["attempts"] == 0
    assert harness.event_doc(QUEUED_EVENT)["deliveringBy"] == ce_id

    # The holder died: once its lease has run out, the relay delivers both, in order.
    relay = relay_handler(harness, Shifted(timedelta(minutes=4)))
    assert run_relay(relay)["delivered"] == 0  # the lease is still live
    relay = relay_handler(harness, Shifted(timedelta(minutes=6)))
    assert run_relay(relay)["delivered"] == 2
    kinds = [p["eventType"] for p in received(receiver)]
    assert kinds == [QUEUED_EVENT, QUEUED_EVENT, PROCESSING_EVENT]
    for event_type in (QUEUED_EVENT, PROCESSING_EVENT):
        doc = harness.event_doc(event_type)
        assert doc["deliveredAt"] is not None and doc["deliveredTo"] == [endpoint_id]
        assert "deliveringUntil" not in doc


def completed_due_again(
    writes: Writes, harness: Harness, receiver: Receiver
) -> tuple[EventHandler, Event, firestore.DocumentReference]:
    """A generation whose ``completed`` failed once and is due again now: the handler, the
    write that recorded it (to send again, as Eventarc's duplicate) and its outbox document."""
    endpoint_id, _ = harness.endpoint(receiver.url)
    handler = direct(harness)
    harness.send(handler, writes.generation())
    writes.job("preProcessing", "complete", 100)
    done = writes.job("inference", "complete", 100)
    receiver.behaviour = "status:503"
    harness.send(handler, done)  # completed: recorded, its delivery failed once
    receiver.behaviour = "ok"
    ref = harness.webhooks_db.document(*outbox_path(PROJECT_ID, GENERATION_ID, COMPLETED_EVENT))
    now = datetime.now(UTC)
    ref.update({f"deliveries.{endpoint_id}.nextAttemptAt": now, "dueAt": now})
    return handler, done, ref


def test_a_call_waits_briefly_for_a_lease_that_ends_and_then_sends_the_next_event(
    writes: Writes, harness: Harness, receiver: Receiver
) -> None:
    handler, done, _ = completed_due_again(writes, harness, receiver)
    # Due again, and a racing call holds its lease and finishes within a moment.
    now = datetime.now(UTC)
    lease(harness.webhooks_db, COMPLETED_EVENT, now + timedelta(seconds=0.5), "ce-other")
    outcome = harness.send(handler, done)  # Eventarc's duplicate of the same write
    assert outcome.fields["delivered"] == [COMPLETED_EVENT]
    kinds = [p["eventType"] for p in received(receiver)]
    assert kinds == [QUEUED_EVENT, COMPLETED_EVENT, COMPLETED_EVENT]


def test_a_call_sees_a_long_lease_end_early_and_sends_the_next_event_itself(
    writes: Writes, harness: Harness, receiver: Receiver
) -> None:
    # The usual race: the holder's lease runs for half a minute, but its send takes
    # milliseconds and it lets go at once. The waiting call must notice (its own copy
    # still shows the long lease), not leave the event to the relay's next pass.
    handler, done, ref = completed_due_again(writes, harness, receiver)
    now = datetime.now(UTC)
    lease(harness.webhooks_db, COMPLETED_EVENT, now + timedelta(seconds=60), "ce-other")
    release = threading.Timer(0.3, ref.update, ({"deliveringUntil": firestore.DELETE_FIELD},))
    release.start()
    try:
        outcome = harness.send(handler, done)  # Eventarc's duplicate of the same write
    finally:
        release.join()
    assert outcome.fields["delivered"] == [COMPLETED_EVENT]
    kinds = [p["eventType"] for p in received(receiver)]
    assert kinds == [QUEUED_EVENT, COMPLETED_EVENT, COMPLETED_EVENT]
