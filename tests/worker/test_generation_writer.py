"""The generation writer on the emulator: transcription and queue only move forward, even racing."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.cloud import firestore
from hypothesis import given
from hypothesis import strategies as st

from diffio_progress.worker.generation_writer import (
    DEQUEUED_AT,
    GenerationWriter,
    dequeue_update,
    queue_update,
)
from diffio_progress.worker.stage_writer import StageWriter
from tests.project import TEST_PROJECT
from tests.races import race
from tests.seed import Seeder

PROJECT, GENERATION = "proj-1", "gen-1"
GENERATION_PATH = ("apiProjects", PROJECT, "generations", GENERATION)
GPU = "Waiting for a GPU"


@pytest.fixture
def writer(seed: Seeder) -> GenerationWriter:
    seed.project(PROJECT)
    seed.generation(PROJECT, GENERATION)
    return GenerationWriter(seed.db, PROJECT, GENERATION)


def stored(db: firestore.Client) -> dict[str, Any]:
    snapshot = db.document(*GENERATION_PATH).get()
    assert snapshot.exists
    return snapshot.to_dict() or {}


def fresh_writer() -> GenerationWriter:
    """A writer with its own client, as a second process would have."""
    return GenerationWriter(firestore.Client(project=TEST_PROJECT), PROJECT, GENERATION)


# -- transcription ------------------------------------------------------------------------


def test_transcription_goes_pending_then_available(writer: GenerationWriter) -> None:
    before = stored(writer.db)

    assert writer.transcription("pending")
    assert stored(writer.db)["transcription"] == {"status": "pending"}
    assert writer.transcription("available")

    after = stored(writer.db)
    assert after["transcription"] == {"status": "available"}
    # Only transcription and updatedAt changed; the owner and ids are untouched.
    assert {k: v for k, v in after.items() if k not in ("transcription", "updatedAt")} == {
        k: v for k, v in before.items() if k != "updatedAt"
    }
    assert abs(after["updatedAt"] - datetime.now(UTC)) < timedelta(seconds=30)


@pytest.mark.parametrize("outcome", ["available", "unavailable"])
def test_an_outcome_is_final(writer: GenerationWriter, outcome: str) -> None:
    writer.transcription("pending")
    assert writer.transcription(outcome)

    assert writer.transcription("pending") is False
    assert writer.transcription("available" if outcome == "unavailable" else "unavailable") is False
    assert writer.transcription(outcome) is False
    assert stored(writer.db)["transcription"] == {"status": outcome}


def test_an_outcome_may_come_without_pending_first(writer: GenerationWriter) -> None:
    assert writer.transcription("unavailable")
    assert stored(writer.db)["transcription"] == {"status": "unavailable"}


def test_the_same_status_twice_writes_once(writer: GenerationWriter) -> None:
    assert writer.transcription("pending")
    updated = stored(writer.db)["updatedAt"]
    assert writer.transcription("pending") is False
    assert stored(writer.db)["updatedAt"] == updated


def test_other_keys_of_the_transcription_map_survive(seed: Seeder) -> None:
    seed.project(PROJECT)
    seed.generation(PROJECT, GENERATION, transcription={"status": "pending", "language": "en"})
    assert GenerationWriter(seed.db, PROJECT, GENERATION).transcription("available")
    assert stored(seed.db)["transcription"] == {"status": "available", "language": "en"}


@pytest.mark.parametrize(
    "broken", ["available", {"status": "AVAILABLE"}, {"status": 1}, {"language": "en"}, [1]]
)
def test_a_malformed_transcription_is_repaired(seed: Seeder, broken: Any) -> None:
    seed.project(PROJECT)
    seed.generation(PROJECT, GENERATION, transcription=broken)
    assert GenerationWriter(seed.db, PROJECT, GENERATION).transcription("pending")
    assert stored(seed.db)["transcription"]["status"] == "pending"


@pytest.mark.parametrize("bad", ["done", "AVAILABLE", "", None])
def test_an_unknown_transcription_status_is_a_caller_bug(
    writer: GenerationWriter, bad: Any
) -> None:
    with pytest.raises(ValueError, match="status must be one of"):
        writer.transcription(bad)
    assert "transcription" not in stored(writer.db)


# -- queue ----------------------------------------------------------------------------------


def test_the_queue_position_only_goes_down(writer: GenerationWriter) -> None:
    assert writer.queue(3, GPU)
    assert stored(writer.db)["queue"] == {"position": 3, "message": GPU}

    assert writer.queue(5, "late") is False
    assert stored(writer.db)["queue"] == {"position": 3, "message": GPU}
    assert writer.queue(3, GPU) is False  # nothing new
    assert writer.queue(3, "Waiting for a GPU in europe-west4")  # same place, new words
    assert writer.queue(0)
    assert stored(writer.db)["queue"] == {"position": 0, "message": None}


def test_dequeue_removes_the_queue_and_refuses_any_later_position(
    writer: GenerationWriter,
) -> None:
    writer.queue(1, GPU)

    assert writer.dequeue()

    doc = stored(writer.db)
    assert "queue" not in doc
    assert abs(doc[DEQUEUED_AT] - datetime.now(UTC)) < timedelta(seconds=30)
    assert writer.queue(0, "late") is False
    assert writer.dequeue() is False
    assert "queue" not in stored(writer.db)


def test_a_started_inference_refuses_a_queue(writer: GenerationWriter, seed: Seeder) -> None:
    inference = StageWriter(seed.db, PROJECT, GENERATION, "inference")
    inference.start(job_state="PENDING", message="Queued")
    assert writer.queue(2, GPU)  # still waiting: the job document says pending

    inference.start(message="Loading model")

    assert writer.queue(1, GPU) is False
    assert stored(seed.db)["queue"] == {"position": 2, "message": GPU}


@pytest.mark.parametrize(
    "broken", [{"position": -1}, {"position": "3"}, {"position": 2.0}, "position 3", [3]]
)
def test_a_malformed_queue_is_replaced(seed: Seeder, broken: Any) -> None:
    seed.project(PROJECT)
    seed.generation(PROJECT, GENERATION, queue=broken)
    assert GenerationWriter(seed.db, PROJECT, GENERATION).queue(7, GPU)
    assert stored(seed.db)["queue"] == {"position": 7, "message": GPU}


@pytest.mark.parametrize(
    ("position", "message", "error"),
    [
        (-1, None, ValueError),
        (1.5, None, ValueError),
        (2.0, None, ValueError),
        (True, None, ValueError),
        ("3", None, ValueError),
        (None, None, ValueError),
        (1, 5, TypeError),
        (1, ["m"], TypeError),
    ],
)
def test_a_bad_queue_is_a_caller_bug_and_writes_nothing(
    writer: GenerationWriter, position: Any, message: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        writer.queue(position, message)
    assert "queue" not in stored(writer.db)


def test_a_missing_generation_is_never_created(
    db: firestore.Client, caplog: pytest.LogCaptureFixture
) -> None:
    missing = GenerationWriter(db, PROJECT, "gen-missing")
    caplog.set_level(logging.WARNING)

    assert missing.transcription("pending") is False
    assert missing.queue(1, GPU) is False
    assert missing.dequeue() is False

    assert missing.read() is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert all("apiProjects/proj-1/generations/gen-missing" in w for w in warnings)


# -- racing writers (tests/races.py) ------------------------------------------------------


def observer(seen: list[dict[str, Any]]) -> Callable[[], None]:
    """One read of the generation into ``seen``, by a reader connected before the race."""
    reader = firestore.Client(project=TEST_PROJECT).document(*GENERATION_PATH)
    reader.get()

    def observe() -> None:
        seen.append(reader.get().to_dict() or {})

    return observe


def test_a_late_dispatcher_never_raises_the_position_or_requeues(writer: GenerationWriter) -> None:
    """One dispatcher counts 10..0 and dequeues; a stale one keeps sending old, higher positions."""
    fast, late = fresh_writer(), fresh_writer()
    dequeued = threading.Event()
    late_after_dequeue: list[bool] = []
    seen: list[dict[str, Any]] = []

    def run_fast() -> None:
        for position in range(10, -1, -1):
            fast.queue(position, GPU)
        assert fast.dequeue()
        dequeued.set()

    def run_late() -> None:
        position = 40
        while len(late_after_dequeue) < 5:
            was_dequeued = dequeued.is_set()
            applied = late.queue(position, "stale")
            if was_dequeued:
                late_after_dequeue.append(applied)
            position = max(position - 1, 0)

    race(run_fast, run_late, observe=observer(seen))

    final = stored(writer.db)
    assert "queue" not in final and DEQUEUED_AT in final
    positions = [doc["queue"]["position"] for doc in seen if "queue" in doc]
    assert positions == sorted(positions, reverse=True), "the position went up"
    taken = [DEQUEUED_AT in doc for doc in seen]
    assert any(taken)
    after = seen[taken.index(True) :]
    assert not any("queue" in doc for doc in after), "queued again after a worker took it"
    assert late_after_dequeue == [False] * 5


def test_a_late_pending_never_undoes_available(writer: GenerationWriter) -> None:
    step, late = fresh_writer(), fresh_writer()
    finished = threading.Event()
    late_after: list[bool] = []
    seen: list[dict[str, Any]] = []

    def run_step() -> None:
        step.transcription("pending")
        assert step.transcription("available")
        finished.set()

    def run_late() -> None:
        while len(late_after) < 5:
            was_finished = finished.is_set()
            applied = late.transcription("pending")
            if was_finished:
                late_after.append(applied)

    race(run_step, run_late, observe=observer(seen))

    statuses = [doc["transcription"]["status"] for doc in seen if "transcription" in doc]
    assert "available" in statuses
    assert set(statuses[statuses.index("available") :]) == {"available"}
    assert late_after == [False] * 5
    assert stored(writer.db)["transcription"] == {"status": "available"}


def test_two_outcomes_racing_end_in_exactly_one(writer: GenerationWriter) -> None:
    writer.transcription("pending")
    results: dict[str, bool] = {}
    writers = {"available": fresh_writer(), "unavailable": fresh_writer()}

    def outcome(status: str) -> Callable[[], None]:
        def run() -> None:
            results[status] = writers[status].transcription(status)

        return run

    race(outcome("available"), outcome("unavailable"))

    assert sorted(results.values()) == [False, True]
    winner = next(status for status, wrote in results.items() if wrote)
    assert stored(writer.db)["transcription"] == {"status": winner}


# -- the pure rule, over any sequence of updates ----------------------------------------


updates = st.lists(
    st.one_of(
        st.tuples(st.just("queue"), st.integers(0, 20), st.sampled_from([None, "a", "b"])),
        st.just(("dequeue", 0, None)),
    ),
    max_size=30,
)


@given(updates)
def test_any_sequence_never_raises_the_position_nor_requeues(
    sequence: list[tuple[str, int, str | None]],
) -> None:
    doc: dict[str, Any] = {}
    for kind, position, message in sequence:
        before = doc.get("queue", {}).get("position")
        if kind == "dequeue":
            fields = dequeue_update(doc)
            if fields is not None:
                doc = {DEQUEUED_AT: "taken"}
            continue
        fields = queue_update(doc, None, position, message)
        if DEQUEUED_AT in doc or (before is not None and position > before):
            assert fields is None
        if fields is not None:
            doc = {**doc, **fields}
            assert before is None or doc["queue"]["position"] <= before
