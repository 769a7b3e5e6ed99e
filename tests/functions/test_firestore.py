"""FirestoreConnection under outage: every failure is StoreUnavailable (a 503), never a crash."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from google.cloud import firestore

from diffio_progress.core import paths
from diffio_progress.core.errors import StoreUnavailable
from diffio_progress.core.events import QUEUED_EVENT
from diffio_progress.core.reaping import Cursor
from diffio_progress.core.stages import PENDING, LiveExecution
from diffio_progress.functions.events.direct_sink import DirectSink
from diffio_progress.functions.events.marks import Marker
from diffio_progress.functions.events.outbox import Outbox, Stored
from diffio_progress.functions.events.outbox_event import OutboxEvent
from diffio_progress.functions.events.pinned_post import PinnedPoster
from diffio_progress.functions.events.recording import new_event
from diffio_progress.functions.firestore import FirestoreConnection
from diffio_progress.functions.reaper.store import ReaperStore, SavedCursor
from diffio_progress.functions.relay.relay import Relay
from diffio_progress.functions.store import FirestoreStore
from diffio_progress.tools import emulator
from tests.outages import BOUND_SECONDS
from tests.project import TEST_PROJECT


@pytest.fixture
def unreachable(monkeypatch: pytest.MonkeyPatch) -> FirestoreStore:
    """A store whose emulator address has nothing listening."""
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{emulator.free_port()}")
    return FirestoreStore(FirestoreConnection(0.5, project="diffio-progress-store"))


def test_an_unreachable_firestore_is_unavailable_and_the_client_is_replaced(
    unreachable: FirestoreStore,
) -> None:
    first = unreachable.connection.client
    with pytest.raises(StoreUnavailable):
        unreachable.get_documents([paths.api_key("k")])
    assert unreachable.connection.client is not first


def test_a_call_racing_a_reconnect_is_unavailable_not_a_crash(
    unreachable: FirestoreStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A thread takes the client, then another thread's failure closes its channel.
    stale = unreachable.connection.client
    with pytest.raises(StoreUnavailable):
        unreachable.get_documents([paths.api_key("k")])
    monkeypatch.setattr(FirestoreConnection, "client", property(lambda self: stale))
    with pytest.raises(StoreUnavailable):
        unreachable.find_generations("gen-1")
    with pytest.raises(StoreUnavailable):
        unreachable.get_documents([paths.api_key("k")])


def test_a_connection_reads_the_database_it_names(db: firestore.Client) -> None:
    named = FirestoreConnection(5.0, project=TEST_PROJECT, database="webhooks")
    default = FirestoreConnection(5.0, project=TEST_PROJECT)
    path = ("probes", "database-" + uuid.uuid4().hex)
    with named.guarded() as client:
        client.document(*path).set({"in": "webhooks"})
    assert FirestoreStore(named).get_documents([path])[path] == {"in": "webhooks"}
    assert FirestoreStore(default).get_documents([path])[path] is None
    assert not db.document(*path).get().exists


def test_the_reaper_and_the_reads_share_one_connection_and_its_reconnect(
    unreachable: FirestoreStore,
) -> None:
    reaper = ReaperStore(unreachable.connection)
    first = unreachable.connection.client
    with pytest.raises(StoreUnavailable):
        reaper.read_cursor()
    assert unreachable.connection.client is not first


def _calls(connection: FirestoreConnection) -> dict[str, Callable[[], object]]:
    """Every kind of Firestore call the functions make, each through ``connection``."""
    store, reaper = FirestoreStore(connection), ReaperStore(connection)
    outbox = Outbox(connection, lambda: datetime.now(UTC))
    sink = DirectSink(connection, PinnedPoster(allow_private=True))
    body = {"status": PENDING, "apiProjectId": "p", "generationId": "g", "hasVideo": False}
    generation = {"apiKeyId": "key_1", "modelKey": "diffio-4.6-pro"}
    event = OutboxEvent("p", "g", QUEUED_EVENT, "evt_1", {})
    new = new_event(body, generation, "evt_1", datetime.now(UTC), {}, 30.0)
    marker, relay = Marker(connection), Relay(outbox, None, 10, lambda: datetime.now(UTC))
    job = paths.job("p", "g", "inference")
    return {
        "batched read": lambda: store.get_documents([paths.api_key("k")]),
        "generation query": lambda: store.find_generations("g"),
        "reaper cursor read": reaper.read_cursor,
        "reaper cursor save": lambda: reaper.save_cursor(Cursor(), SavedCursor(Cursor())),
        "reaper stage query": lambda: reaper.stale_jobs(["running"], datetime.now(UTC), None, 1),
        "reaper stage write": lambda: reaper.fail_stage(job, "ex", LiveExecution("FAILED")),
        "outbox read": lambda: outbox.read("p", "g"),
        "outbox record": lambda: outbox.record(Stored({}, frozenset()), new, None),
        "outbox mark": lambda: marker.mark(event, {}, []),
        "relay due query": lambda: relay.due(datetime.now(UTC)),
        "direct sink endpoints": lambda: sink.endpoints("key_1"),
    }


@pytest.mark.parametrize("call", list(_calls(FirestoreConnection(0.5))))
def test_every_call_of_every_function_is_unavailable_when_firestore_is(
    unreachable: FirestoreStore, call: str
) -> None:
    connection = unreachable.connection
    first = connection.client
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        _calls(connection)[call]()
    # Within the function's deadline, not the client library's minute of retries.
    assert time.monotonic() - started < BOUND_SECONDS
    assert connection.client is not first  # and the next call dials afresh
