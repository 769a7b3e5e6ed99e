"""One sender at a time: racing writes, duplicate CloudEvents: deliver each event once, in order."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
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
    Writes,
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
    """Deliver ``event`` as Eventarc with ``--retry`` does: again after each failure."""
    for _ in range(40):
        try:
            return harness.send(handler, event).outcome
        except DeliveryFailed:
            time.sleep(0.25)
    raise AssertionError("still failing after 40 attempts")


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
    harness.send(harness.handler(), writes.generation())  # recorded, sink off
    started = writes.job("preProcessing", "running", 5)
    ce_id = started[0]["ce-id"]
    # Another call (or this very CloudEvent, delivered twice) is mid-delivery of queued.
    lease(db, QUEUED_EVENT, datetime.now(UTC) + timedelta(minutes=5), ce_id)

    handler = direct(harness)
    with pytest.raises(LeaseHeld):
        harness.send(handler, started)
    # Nothing at all was sent: not queued, and not processing ahead of it.
    assert receiver.received == []
    assert harness.event_doc(PROCESSING_EVENT)["deliveredAt"] is None
    assert harness.event_doc(QUEUED_EVENT)["deliveringBy"] == ce_id

    # The holder died: once its lease has run out, Eventarc's retry delivers both, in order.
    lease(db, QUEUED_EVENT, datetime.now(UTC) - timedelta(seconds=1), ce_id)
    harness.send(handler, started)
    assert [p["eventType"] for p in received(receiver)] == [QUEUED_EVENT, PROCESSING_EVENT]
    for event_type in (QUEUED_EVENT, PROCESSING_EVENT):
        doc = harness.event_doc(event_type)
        assert doc["deliveredAt"] is not None and doc["deliveredTo"] == [endpoint_id]
        assert "deliveringUntil" not in doc


def test_a_call_killed_after_its_claim_strands_nothing(
    writes: Writes, harness: Harness, receiver: Receiver
) -> None:
    harness.endpoint(receiver.url)
    created = writes.generation()
    harness.send(harness.handler(), created)
    handler = direct(harness)
    # A call claims queued with a short lease, then dies before sending anything.
    claim = handler.outbox.claim(PROJECT_ID, GENERATION_ID, QUEUED_EVENT, "ce-dead", 1.0)
    assert claim.state == "claimed"
    time.sleep(1.1)
    assert harness.send(handler, created).outcome == "nothing new"
    assert [p["eventType"] for p in received(receiver)] == [QUEUED_EVENT]


def test_a_call_waits_briefly_for_a_lease_that_ends_and_then_sends_the_next_event(
    db: firestore.Client, writes: Writes, harness: Harness, receiver: Receiver
) -> None:
    harness.endpoint(receiver.url)
    handler = direct(harness)
    harness.send(handler, writes.generation())
    # A racing call holds the lease on completed's predecessor and finishes within a moment.
    writes.job("preProcessing", "complete", 100)
    done = writes.job("inference", "complete", 100)
    harness.send(harness.handler(), done)  # recorded by an instance without a sink
    lease(db, COMPLETED_EVENT, datetime.now(UTC) + timedelta(seconds=0.5), "ce-other")
    assert harness.send(handler, done).outcome == "nothing new"  # no retry was needed
    assert [p["eventType"] for p in received(receiver)] == [QUEUED_EVENT, COMPLETED_EVENT]
