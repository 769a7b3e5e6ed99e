"""Eventarc's at-least-once, any-order delivery: scrambled, repeated, late and racing events."""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from google.cloud import firestore

from diffio_progress.core.events import (
    COMPLETED_EVENT,
    FAILED_EVENT,
    QUEUED_EVENT,
    RANKS,
)
from diffio_progress.functions.events.handler import EventHandler
from tests.functions.events.harness import PROJECT_ID, Event, Harness, Writes
from tests.races import race

Write = Callable[[], Event]


def lifecycle(writes: Writes, fail: bool) -> list[Write]:
    """The writes of one audio generation, as its dispatcher and workers make them."""
    end: list[Write] = (
        [lambda: writes.job("inference", "failed", 40, error="Inference failed")]
        if fail
        else [
            lambda: writes.job("inference", "running", 90),
            lambda: writes.job("inference", "complete", 100),
        ]
    )
    return [
        lambda: writes.generation(),
        lambda: writes.job("preProcessing", "pending"),
        lambda: writes.job("inference", "pending"),
        lambda: writes.job("preProcessing", "running", 0),
        lambda: writes.job("preProcessing", "running", 60),
        lambda: writes.job("preProcessing", "complete", 100),
        lambda: writes.job("inference", "running", 0),
        lambda: writes.job("inference", "running", 30),
        *end,
    ]


def assert_forward_only(outbox: dict[str, dict[str, Any]], terminal: str) -> None:
    """Recorded in rank order, each rank once, ending with the terminal event."""
    by_time = sorted(outbox.values(), key=lambda doc: doc["createdAt"])
    ranks = [RANKS[doc["eventType"]] for doc in by_time]
    assert ranks == sorted(set(ranks)), [doc["eventType"] for doc in by_time]
    assert by_time[-1]["eventType"] == terminal
    assert not (COMPLETED_EVENT in outbox and FAILED_EVENT in outbox)


@pytest.mark.parametrize("seed_value", range(8))
def test_scrambled_and_repeated_events_record_forward_only_and_nothing_new_after(
    db: firestore.Client, writes: Writes, harness: Harness, seed_value: int
) -> None:
    rng = random.Random(seed_value)
    fail = seed_value % 2 == 1
    handler = harness.handler()
    pool: list[Event] = []
    every: list[Event] = []
    for write in lifecycle(writes, fail):
        event = write()
        pool.append(event)
        every.append(event)
        # Some events wait, come out of order, or come twice.
        rng.shuffle(pool)
        for _ in range(rng.randint(0, len(pool))):
            sent = pool.pop()
            harness.send(handler, sent)
            if rng.random() < 0.3:
                pool.insert(0, sent)
    rng.shuffle(pool)
    for event in pool:
        harness.send(handler, event)
    terminal = FAILED_EVENT if fail else COMPLETED_EVENT
    settled = harness.outbox()
    assert_forward_only(settled, terminal)

    # Every event once more, in any order, and by another instance: nothing new at all.
    rng.shuffle(every)
    again = harness.handler()
    assert {harness.send(again, event).outcome for event in every} <= {
        "nothing new",
        "cannot change the status; nothing read",
    }
    assert harness.outbox() == settled


def test_late_events_after_the_end_record_nothing(writes: Writes, harness: Harness) -> None:
    handler = harness.handler()
    created = writes.generation()
    started = writes.job("preProcessing", "running")
    writes.job("preProcessing", "complete", 100)
    finished = writes.job("inference", "complete", 100)
    # The last write's event arrives first: the generation is complete, and only that is true.
    assert harness.send(handler, finished).outcome == f"recorded {COMPLETED_EVENT}"
    for late in (created, started, created):
        assert harness.send(handler, late).outcome == "nothing new"
    # Queued and processing were skipped; they are not invented afterwards.
    assert set(harness.outbox()) == {COMPLETED_EVENT}


def outcome(harness: Harness, handler: EventHandler, event: Event) -> str:
    return harness.send(handler, event).outcome


def test_two_deliveries_of_the_same_event_racing_record_it_once(
    db: firestore.Client, seed: Any, harness: Harness
) -> None:
    for attempt in range(4):
        generation = f"gen-race-{attempt}"
        seed.project(PROJECT_ID, "user-1")
        event = Writes(db, PROJECT_ID, generation).generation()
        # Two instances, as two Eventarc deliveries of one event could land on.
        first, second = harness.handler(), harness.handler()
        outcomes = sorted(
            race(partial(outcome, harness, first, event), partial(outcome, harness, second, event))
        )
        assert outcomes == ["nothing new", f"recorded {QUEUED_EVENT}"]
        assert list(harness.outbox(PROJECT_ID, generation)) == [QUEUED_EVENT]


def test_racing_events_of_different_stages_never_record_both_ends(
    db: firestore.Client, seed: Any, harness: Harness
) -> None:
    for attempt in range(4):
        generation = f"gen-ends-{attempt}"
        writes = Writes(db, PROJECT_ID, generation)
        seed.project(PROJECT_ID, "user-1")
        harness.send(harness.handler(), writes.generation())
        running = writes.job("preProcessing", "running")
        writes.job("preProcessing", "complete", 100)
        done = writes.job("inference", "complete", 100)
        handlers = [harness.handler() for _ in range(3)]
        race(
            *[
                partial(outcome, harness, h, e)
                for h, e in zip(handlers, (running, done, done), strict=True)
            ]
        )
        outbox = harness.outbox(PROJECT_ID, generation)
        # Every one read the complete generation: processing was never recorded, completed once.
        assert set(outbox) == {QUEUED_EVENT, COMPLETED_EVENT}
        assert_forward_only(outbox, COMPLETED_EVENT)
