"""Simulated generations through the local Eventarc: each status heard once, queued first."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from cloudevents.http import from_http
from google.cloud import firestore

from diffio_progress.core.events import COMPLETED_EVENT, PROCESSING_EVENT, QUEUED_EVENT
from diffio_progress.functions.events.pinned_post import PinnedPoster
from diffio_progress.tools.bridge import Bridge, Change
from diffio_progress.tools.cloud_events import written_event
from diffio_progress.tools.simulator import Pace, ensure_generation, simulate
from tests.functions.events.harness import KEY_ID, Harness
from tests.functions.events.receivers import Receiver
from tests.project import TEST_PROJECT
from tests.seed import Seeder

INSTANT = Pace(step_seconds=0, steps=3, queued_seconds=0, queue_steps=2)


@pytest.fixture
def bridged(db: firestore.Client, harness: Harness) -> Iterator[list[str]]:
    """Every generation and job write goes to the event function (direct sink), several at
    once, each retried on failure as Eventarc does; yields the bridge's errors."""
    handler = harness.handler(
        PinnedPoster(allow_private=True),
        webhook_sink="direct",
        webhook_allow_private_urls=True,
    )

    def send(change: Change) -> None:
        event = written_event(TEST_PROJECT, change.path, change.before, change.after)
        handler(from_http(*event))  # a delivery never fails the call

    errors: list[str] = []
    bridge = Bridge(db, "", errors.append, send=send).start()
    yield errors
    bridge.stop()


def kinds_of(receiver: Receiver, generation: str) -> list[str]:
    payloads = [json.loads(r.body) for r in receiver.received]
    return [p["eventType"] for p in payloads if p["generationId"] == generation]


def wait_for(receiver: Receiver, generation: str, kind: str) -> None:
    for _ in range(200):
        if kind in kinds_of(receiver, generation):
            time.sleep(0.5)  # anything late (a repeat) would arrive now
            return
        time.sleep(0.1)
    raise AssertionError(f"{kind} never arrived: {kinds_of(receiver, generation)}")


def test_simulates_into_a_project_with_a_finished_generation_each_start_at_queued(
    db: firestore.Client,
    seed: Seeder,
    harness: Harness,
    receiver: Receiver,
    bridged: list[str],
) -> None:
    harness.endpoint(receiver.url)
    project = "proj-sim"
    seed.project(project, "user-1")
    for generation in ("gen-sim-1", "gen-sim-2", "gen-sim-3"):
        ensure_generation(
            db, project, generation, user_id="user-1", has_video=False, api_key_id=KEY_ID
        )
        assert simulate(db, project, generation, has_video=False, pace=INSTANT) == "complete"
        wait_for(receiver, generation, COMPLETED_EVENT)
        # The first one sets the project's audioOriginalMp3Ready; the later ones start there.
        assert kinds_of(receiver, generation) == [QUEUED_EVENT, PROCESSING_EVENT, COMPLETED_EVENT]
    assert db.document("apiProjects", project).get().get("audioOriginalMp3Ready") is True
    assert max(Counter(r.headers["svix-id"] for r in receiver.received).values()) == 1
    assert bridged == []
