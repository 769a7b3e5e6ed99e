"""Synchronous sends and lookups are bounded per key: a few in flight, the rest 429 at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import flask
import pytest
from google.cloud import firestore

from diffio_progress.core.errors import RateLimited
from diffio_progress.functions.config import Settings
from diffio_progress.functions.events.pinned_post import (
    MAX_LOOKUPS_IN_FLIGHT,
    MAX_LOOKUPS_PER_HOST,
    LookupBusy,
    PinnedPoster,
    resolve_within,
)
from diffio_progress.functions.webhooks.sync_calls import SyncCalls
from diffio_progress.functions.webhooks.wiring import build_configure_handler
from tests.functions.events.receivers import Receiver
from tests.functions.webhooks.world import TEST_EVENT, Api, Key, make_key
from tests.project import LOCAL_KEY, TEST_PROJECT
from tests.seed import Seeder

CALLS = 8


@pytest.fixture
def writer(seed: Seeder) -> Key:
    return make_key(seed, "key_writer", webhooksWrite=True)


class Answers:
    """Answers as they come, each with what the receiver had got when it came."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.items: list[dict[str, Any]] = []

    def add(self, **item: Any) -> None:
        with self.lock:
            self.items.append(item)
            self.lock.notify_all()

    def wait_for(self, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        with self.lock:
            assert self.lock.wait_for(lambda: len(self.items) >= count, timeout), self.items
            return list(self.items)


def test_eight_test_events_at_once_from_one_key_two_wait_and_six_get_429_at_once(
    api: Api, writer: Key, receiver: Receiver
) -> None:
    assert (
        api.configure(
            writer, mode="live", url=receiver.url, eventTypes=["generation.completed"]
        ).status_code
        == 200
    )
    receiver.behaviour, receiver.hold_until = "hold", threading.Event()
    app = api.clients[TEST_EVENT].application
    answers = Answers()
    body = {"eventType": "generation.completed", "mode": "live"}

    def call() -> None:
        started = time.monotonic()
        headers = {"Authorization": f"Bearer {writer.key}"}
        response = app.test_client().post("/", json=body, headers=headers)
        answers.add(
            status=response.status_code,
            retry_after=response.headers.get("Retry-After"),
            code=(response.get_json() or {}).get("code"),
            seconds=time.monotonic() - started,
            released=receiver.hold_until.is_set(),
            received=len(receiver.received),
        )

    threads = [threading.Thread(target=call) for _ in range(CALLS)]
    for thread in threads:
        thread.start()
    try:
        refused = answers.wait_for(CALLS - 2)
    finally:
        receiver.hold_until.set()  # the two that got through may now be answered
        for thread in threads:
            thread.join(30)
    # Six answers came while the receiver still held the other two: they waited for nothing.
    assert [(a["status"], a["code"], a["released"]) for a in refused] == [
        (429, "rate_limited", False)
    ] * (CALLS - 2)
    assert all(int(a["retry_after"]) >= 1 for a in refused)
    assert all(a["seconds"] < 1 for a in refused), [a["seconds"] for a in refused]
    assert all(a["received"] <= 2 for a in refused)
    delivered = answers.wait_for(CALLS)[CALLS - 2 :]
    assert [a["status"] for a in delivered] == [200, 200]
    assert len(receiver.received) == 2


class HangingDns:
    """A resolver that holds every lookup until released, counting them."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.release = threading.Event()
        self.lock = threading.Condition()

    def __call__(self, host: str, port: int) -> list[str]:
        with self.lock:
            self.asked.append(host)
            self.lock.notify_all()
        self.release.wait(30)
        return ["93.184.215.14"]


@pytest.fixture
def hanging() -> Iterator[HangingDns]:
    dns = HangingDns()
    yield dns
    dns.release.set()


def test_a_third_configure_of_one_key_is_429_before_its_dns_lookup(
    db: firestore.Client, writer: Key, hanging: HangingDns
) -> None:
    settings = Settings(
        project=TEST_PROJECT, webhook_sink="direct", webhook_secrets_local_key=LOCAL_KEY
    )
    handler = build_configure_handler(settings, PinnedPoster(resolve=hanging))
    app = flask.Flask("configure")
    answers = Answers()

    def call(host: str) -> None:
        body = {"mode": "live", "url": f"https://{host}/h", "eventTypes": ["generation.failed"]}
        headers = {"Authorization": f"Bearer {writer.key}"}
        with app.test_request_context("/", method="POST", json=body, headers=headers):
            answers.add(host=host, status=handler(flask.request).status_code)

    threads = [threading.Thread(target=call, args=(f"h{i}.example.com",)) for i in range(2)]
    for thread in threads:
        thread.start()
    with hanging.lock:
        assert hanging.lock.wait_for(lambda: len(hanging.asked) == 2, 30)
    call("third.example.com")
    assert answers.items == [{"host": "third.example.com", "status": 429}]
    assert sorted(hanging.asked) == ["h0.example.com", "h1.example.com"]
    hanging.release.set()
    for thread in threads:
        thread.join(30)
    handler.close()


def test_a_slot_is_given_back_however_the_call_ends_and_retry_after_counts_down() -> None:
    now = [100.0]
    calls = SyncCalls(per_key=2, deadline_seconds=5, monotonic=lambda: now[0])
    with calls.slot("k") as first:
        assert first == 105.0
        now[0] = 102.5
        with pytest.raises(ValueError), calls.slot("k"):
            raise ValueError("the send failed")
        with calls.slot("k"):
            with pytest.raises(RateLimited) as refused, calls.slot("k"):
                pass
            assert refused.value.headers["Retry-After"] == "3"
            with calls.slot("another key"):
                assert calls.in_flight("k") == 2
    assert calls.in_flight("k") == 0


def test_the_sync_deadline_ends_a_test_send_to_a_hanging_receiver(
    api: Api, writer: Key, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_SYNC_DEADLINE_SECONDS", "0.5")
    api.configure(writer, mode="live", url=receiver.url, eventTypes=["generation.completed"])
    receiver.behaviour = "hang"
    answer = api.send_test(writer, eventType="generation.completed", mode="live").get_json()
    assert answer["delivery"]["status"] == "failed" and answer["delivery"]["httpStatus"] is None
    assert "no answer within 0.5 s" in answer["delivery"]["error"]


def test_one_host_holds_at_most_its_share_of_the_dns_lookups(hanging: HangingDns) -> None:
    deadline = time.monotonic() + 60
    threads = [
        threading.Thread(target=resolve_within, args=(hanging, "slow.example.com", 443, deadline))
        for _ in range(MAX_LOOKUPS_PER_HOST)
    ]
    for thread in threads:
        thread.start()
    with hanging.lock:
        assert hanging.lock.wait_for(lambda: len(hanging.asked) == MAX_LOOKUPS_PER_HOST, 30)
    with pytest.raises(LookupBusy, match="slow.example.com"):
        resolve_within(hanging, "SLOW.example.com", 443, deadline)
    assert len(hanging.asked) == MAX_LOOKUPS_PER_HOST  # refused without a lookup
    assert MAX_LOOKUPS_PER_HOST < MAX_LOOKUPS_IN_FLIGHT
    # Another host is not held back by the one that is full.
    assert resolve_within(lambda h, p: ["93.184.215.14"], "other.example.com", 443, deadline)
    hanging.release.set()
    for thread in threads:
        thread.join(30)
