"""The served event function when Firestore is hung or gone: a bounded non-2xx, then delivery."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.cloud import firestore

from diffio_progress.core import paths
from diffio_progress.core.events import QUEUED_EVENT, outbox_path
from diffio_progress.functions.config import Settings
from diffio_progress.functions.relay.handler import build_relay_handler
from diffio_progress.functions.secret_box import LocalKey, SecretBox
from diffio_progress.tools import emulator
from diffio_progress.tools.cloud_events import written_event
from diffio_progress.tools.event_world import create_endpoint, new_signing_secret
from diffio_progress.tools.processes import group_members
from tests.functions.events.harness import Shifted, run_relay
from tests.functions.events.receivers import Received, Receiver
from tests.outages import BOUND_SECONDS, freeze, frozen, kill, stop, thaw
from tests.project import LOCAL_KEY, TEST_PROJECT, WEBHOOK_DATABASE
from tests.seed import MINTED_SECRETS, Seeder

PROJECT_ID, KEY_ID = "proj-outage", "key_outage"
Event = tuple[dict[str, str], bytes]


@dataclass
class HookedReceiver(Receiver):
    """A receiver that runs ``on_next_post`` once, while holding the next delivery."""

    on_next_post: Callable[[], None] | None = None
    hook_failed: BaseException | None = None  # raised on the server's thread: kept for the test

    def record(self, item: Received) -> None:
        super().record(item)
        hook, self.on_next_post = self.on_next_post, None
        if hook is not None:
            try:
                hook()
            except BaseException as failed:
                self.hook_failed = failed

    def generations(self) -> list[tuple[str, str]]:
        """(generationId, eventId) of every delivery, in order."""
        return [(json.loads(r.body)["generationId"], r.headers["svix-id"]) for r in self.received]


@pytest.fixture
def receiver() -> Iterator[HookedReceiver]:
    started = HookedReceiver()
    yield started
    started.stop()


@dataclass
class World:
    """The project, its key's endpoint and generations, in the emulator the test owns."""

    emulator: emulator.FirestoreEmulator
    receiver_url: str
    monkeypatch: pytest.MonkeyPatch

    def db(self) -> firestore.Client:
        self.monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", self.emulator.host_port)
        return firestore.Client(project=TEST_PROJECT)

    def seed(self) -> None:
        """The project and the endpoint (a restarted emulator keeps nothing: seed again)."""
        db = self.db()
        Seeder(db).project(PROJECT_ID, "user-1", has_video=False)
        secret = new_signing_secret()
        MINTED_SECRETS.add(secret)
        box = SecretBox(LocalKey.from_base64(LOCAL_KEY))  # the served function's key too
        create_endpoint(db, KEY_ID, self.receiver_url, secret, box=box)

    def create_generation(self, generation_id: str) -> Event:
        """Write a new generation; return the CloudEvent Eventarc sends for that write."""
        doc = {
            "generationId": generation_id,
            "apiProjectId": PROJECT_ID,
            "userId": "user-1",
            "apiKeyId": KEY_ID,
            "modelKey": "diffio-4.6-pro",
        }
        path = paths.generation(PROJECT_ID, generation_id)
        self.db().document(*path).set(doc)
        return written_event(TEST_PROJECT, "/".join(path), None, doc)

    def relay(self) -> dict[str, int]:
        """The relay's next scheduled call, once the lease of the call that failed ran out."""
        self.db()  # the emulator's address, in the environment
        settings = Settings(
            project=TEST_PROJECT,
            webhook_sink="direct",
            webhook_allow_private_urls=True,
            webhook_secrets_local_key=LOCAL_KEY,  # the key the endpoint's secret is sealed with
        )
        later = Shifted(timedelta(minutes=2))
        return run_relay(build_relay_handler(settings, None, None, later))

    def queued(self, generation_id: str) -> dict[str, Any]:
        path = outbox_path(PROJECT_ID, generation_id, QUEUED_EVENT)
        webhooks = firestore.Client(project=TEST_PROJECT, database=WEBHOOK_DATABASE)
        snapshot = webhooks.document(*path).get()
        assert snapshot.exists
        return snapshot.to_dict() or {}


def post(url: str, event: Event) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.post(url, headers=event[0], content=event[1], timeout=120)
    return response, time.monotonic() - started


def assert_retried(answer: tuple[httpx.Response, float], explain: Callable[[], str]) -> None:
    """Eventarc retries any non-2xx: this one came in time and shows no stack.

    ``explain`` is what a failure prints beside the answer (what the receiver got,
    the function's last log lines): a rare fast 200 here has not been explained yet.
    """
    response, elapsed = answer
    assert response.status_code == 503, (
        f"HTTP {response.status_code} after {elapsed:.2f} s: {response.text}\n{explain()}"
    )
    assert "Traceback" not in response.text and 'File "' not in response.text
    assert elapsed < BOUND_SECONDS


@pytest.mark.slow
def test_an_outage_answers_503_and_eventarcs_retry_delivers_without_a_restart(
    own_emulator: emulator.FirestoreEmulator,
    serve_function: Callable[..., str],
    server_log_dir: Path,
    receiver: HookedReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    own_emulator.start()
    world = World(own_emulator, receiver.url, monkeypatch)
    world.seed()
    url = serve_function(
        target="on_generation_written",
        FIRESTORE_EMULATOR_HOST=own_emulator.host_port,
        FIRESTORE_TIMEOUT_SECONDS="3",
        WEBHOOK_SINK="direct",
        WEBHOOK_ALLOW_PRIVATE_URLS="true",
    )
    assert post(url, world.create_generation("gen-0"))[0].status_code == 200
    log = server_log_dir / f"{url.rsplit(':', 1)[1]}.log"

    def explain() -> str:
        tail = "\n".join(log.read_text().splitlines()[-8:])
        running = own_emulator.process
        emulator_group = group_members(running.pid) if running else "stopped"
        return (
            f"received: {receiver.generations()}\nhook: {receiver.hook_failed!r}\n"
            f"emulator processes: {emulator_group}\n"
            f"the function's last lines:\n{tail}"
        )

    # Hung before the call reads anything: 503, nothing sent; the retry delivers.
    event = world.create_generation("gen-1")
    with frozen(own_emulator):
        assert_retried(post(url, event), explain)
    assert [g for g, _ in receiver.generations()] == ["gen-0"]
    assert post(url, event)[0].status_code == 200
    assert [g for g, _ in receiver.generations()] == ["gen-0", "gen-1"]

    # Hung after the delivery, while marking it delivered: recorded, so the call
    # succeeds (delivery is ours). Whether the mark landed once Firestore answered
    # again or not, the relay marks it after the lease, and any repeat (allowed: it
    # had arrived) carries the same eventId.
    event = world.create_generation("gen-2")
    receiver.on_next_post = lambda: freeze(own_emulator)
    try:
        answer, elapsed = post(url, event)
        assert answer.status_code == 200 and elapsed < 2 * BOUND_SECONDS, explain()
    finally:
        thaw(own_emulator)
    assert receiver.hook_failed is None, receiver.hook_failed
    world.relay()
    assert world.queued("gen-2")["deliveredAt"] is not None
    sent = {e for g, e in receiver.generations() if g == "gen-2"}
    assert sent == {world.queued("gen-2")["eventId"]}

    # Gone while marking: the connection drops mid-call, after recording: a bounded 200.
    # Gone before recording: a bounded 503 (the client library alone would retry for a
    # minute), then a fresh emulator on the same port and the retry of the same
    # CloudEvent delivers, from the same function process.
    event = world.create_generation("gen-3")
    receiver.on_next_post = lambda: kill(own_emulator)
    assert post(url, event)[0].status_code == 200, explain()
    stop(own_emulator)
    assert_retried(post(url, event), explain)
    own_emulator.start()
    world.seed()
    world.create_generation("gen-3")
    assert post(url, event)[0].status_code == 200
    assert world.queued("gen-3")["deliveredAt"] is not None
    assert [g for g, _ in receiver.generations()][-1] == "gen-3"

    text = log.read_text()
    assert "Traceback" not in text
    assert text.count('"outcome": "Firestore unavailable; Eventarc retries"') == 2
