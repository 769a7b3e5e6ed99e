"""The local Eventarc: emulator listeners become CloudEvents with the old and new documents."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from cloudevents.http import from_http
from google.cloud import firestore
from google.events.cloud.firestore_v1 import DocumentEventData

from diffio_progress.functions.events.cloud_event import decode
from diffio_progress.tools.bridge import Bridge, Change
from diffio_progress.tools.cloud_events import written_event
from tests.seed import Seeder

GENERATION = "apiProjects/proj-1/generations/gen-1"


class Collected:
    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def send(self, change: Change) -> None:
        with self._lock:
            self.changes.append(change)

    def wait_for(self, count: int, timeout: float = 30) -> list[Change]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.changes) >= count:
                    return list(self.changes)
            time.sleep(0.05)
        pytest.fail(f"expected {count} changes, got {self.changes}")


@pytest.fixture
def bridged(db: firestore.Client, seed: Seeder) -> Iterator[Collected]:
    seed.project("proj-1")
    seed.generation("proj-1", "gen-0")  # exists before the bridge: never forwarded
    collected = Collected()
    bridge = Bridge(db, "http://127.0.0.1:9/", collected.errors.append, send=collected.send)
    bridge.start()
    yield collected
    bridge.stop()


def test_each_change_carries_its_old_and_new_document(
    db: firestore.Client, bridged: Collected
) -> None:
    generation = db.document(GENERATION)
    generation.set({"generationId": "gen-1", "apiProjectId": "proj-1", "userId": "user-1"})
    bridged.wait_for(1)
    job = generation.collection("jobs").document("inference")
    job.set({"status": "running", "progress": 10})
    bridged.wait_for(2)
    job.update({"progress": 20})
    bridged.wait_for(3)
    job.delete()
    changes = bridged.wait_for(4)
    by_path = [(c.path.rsplit("/", 1)[-1], c.before, c.after) for c in changes]
    assert by_path[0] == (
        "gen-1",
        None,
        {"generationId": "gen-1", "apiProjectId": "proj-1", "userId": "user-1"},
    )
    assert by_path[1:] == [
        ("inference", None, {"status": "running", "progress": 10}),
        ("inference", {"status": "running", "progress": 10}, {"status": "running", "progress": 20}),
        ("inference", {"status": "running", "progress": 20}, None),
    ]
    assert all(c.committed is not None for c in changes)
    assert bridged.errors == []


def test_the_bridge_posts_exactly_what_eventarc_posts(db: firestore.Client) -> None:
    before = {"status": "running", "progress": 10, "nested": {"list": [1, 2.5, None, True]}}
    after = {**before, "progress": 20}
    headers, body = written_event("proj", f"{GENERATION}/jobs/inference", before, after)
    assert headers["content-type"] == "application/protobuf"
    assert headers["ce-type"] == "google.cloud.firestore.document.v1.written"
    assert headers["ce-subject"] == f"documents/{GENERATION}/jobs/inference"
    message = DocumentEventData.deserialize(body)
    assert message.value.name.endswith(f"/documents/{GENERATION}/jobs/inference")
    assert message.value.fields["progress"].integer_value == 20
    assert (
        message.old_value.fields["nested"]
        .map_value.fields["list"]
        .array_value.values[1]
        .double_value
        == 2.5
    )
    write = decode(from_http(headers, body))
    assert (write.target.stage, write.before, write.after) == (
        "inference",
        {"status": "running"},
        {"status": "running"},
    )
