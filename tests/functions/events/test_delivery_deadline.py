"""One call, one deadline: endpoints are sent to at once, and a slow one holds back no other."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from google.cloud import firestore

from diffio_progress.core.endpoints import ENDPOINTS
from diffio_progress.core.events import QUEUED_EVENT
from diffio_progress.functions.events.direct_sink import DirectSink
from diffio_progress.functions.events.handler import EventHandler
from diffio_progress.functions.events.pinned_post import PinnedPoster, Resolver
from tests.functions.events.harness import (
    KEY_ID,
    PROJECT_ID,
    Harness,
    Shifted,
    Writes,
    new_secret,
    relay_handler,
    run_relay,
)
from tests.functions.events.receivers import Receiver


def endpoint(harness: Harness, endpoint_id: str, url: str, key_id: str = KEY_ID) -> None:
    """An endpoint with a chosen id: the query returns a key's endpoints in id order."""
    harness.webhooks_db.document(ENDPOINTS, endpoint_id).set(
        {"apiKeyId": key_id, "url": url, "secret": new_secret()}
    )


def direct(harness: Harness, deadline: float, resolve: Resolver | None = None) -> EventHandler:
    poster = PinnedPoster(allow_private=True, deadline_seconds=deadline)
    if resolve is not None:
        poster.resolve = resolve
    return harness.handler(poster, webhook_sink="direct", webhook_allow_private_urls=True)


def test_an_endpoint_that_answers_slowly_does_not_hold_back_the_next_one(
    db: firestore.Client,
    writes: Writes,
    harness: Harness,
    receivers: Callable[..., Receiver],
) -> None:
    # The first endpoint answers only once the second has the event. Sent one after
    # the other, the first runs out its deadline waiting; sent at once, both succeed.
    second = receivers()
    first = receivers("hold")
    first.hold_until = second.arrived
    endpoint(harness, "ep_1_slow", first.url)
    endpoint(harness, "ep_2_quick", second.url)

    outcome = harness.send(direct(harness, deadline=3.0), writes.generation())

    assert outcome.fields["delivered"] == [QUEUED_EVENT]
    assert len(first.received) == len(second.received) == 1
    assert sorted(harness.event_doc(QUEUED_EVENT)["deliveredTo"]) == ["ep_1_slow", "ep_2_quick"]


@pytest.fixture
def stuck_dns() -> Iterator[tuple[Resolver, threading.Event]]:
    """A resolver whose ``stuck-*`` names hang (until the test ends); others are loopback."""
    released = threading.Event()

    def resolve(host: str, port: int) -> list[str]:
        if host.startswith("stuck-"):
            released.wait(60)
        return ["127.0.0.1"]

    yield resolve, released
    released.set()


def test_one_customers_hanging_dns_does_not_stall_anothers_delivery(
    db: firestore.Client,
    writes: Writes,
    harness: Harness,
    receiver: Receiver,
    stuck_dns: tuple[Resolver, threading.Event],
) -> None:
    resolve, _ = stuck_dns
    port = receiver.url.split(":")[2].split("/")[0]
    for n in range(6):
        endpoint(harness, f"ep_stuck_{n}", f"http://stuck-{n}.test:{port}/hooks")
    endpoint(harness, "ep_other", f"http://other.test:{port}/hooks", key_id="key_other")
    handler = direct(harness, deadline=1.0, resolve=resolve)

    # A failed delivery is scheduled: the call succeeds (delivery-contract.md §1).
    harness.send(handler, writes.generation())
    assert "did not resolve in time" in harness.attempt_errors()
    assert receiver.received == []

    # Those lookups still hang. Another customer's delivery resolves and lands all the same.
    other = Writes(db, PROJECT_ID, "gen-other")
    outcome = harness.send(handler, other.generation(apiKeyId="key_other"))
    assert outcome.fields["delivered"] == [QUEUED_EVENT]
    assert [r.path for r in receiver.received] == ["/hooks"]


def test_the_calls_deadline_cuts_a_delivery_its_events_deadline_would_allow(
    writes: Writes, harness: Harness, receivers: Callable[..., Receiver]
) -> None:
    # The endpoint answers in 2 s: within one event's 5-s deadline, past the call's 1 s.
    slow = receivers("slow:2")
    endpoint(harness, "ep_slow", slow.url)
    handler = direct(harness, deadline=5.0)
    assert isinstance(handler.sink, DirectSink)
    handler.sink.call_deadline_seconds = 1.0
    event = writes.generation()

    harness.send(handler, event)
    assert "the rest of the call's deadline" in harness.attempt_errors()
    assert len(slow.received) == 1  # it was sent; the answer came too late
    assert harness.event_doc(QUEUED_EVENT).get("deliveredAt") is None

    # The relay's sessions last its call (longer than 30 s): its retry delivers.
    relay = relay_handler(harness, Shifted(timedelta(seconds=6)), PinnedPoster(True, 5.0))
    assert run_relay(relay)["delivered"] == 1
    assert harness.event_doc(QUEUED_EVENT)["deliveredTo"] == ["ep_slow"]
