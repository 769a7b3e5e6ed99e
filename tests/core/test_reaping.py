"""The reaper's pure rules: what it checks, and a cursor that reaches every candidate in a lap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from diffio_progress.core import paths
from diffio_progress.core.reaping import (
    CANDIDATE_STATUSES,
    AskCloudRun,
    Cursor,
    Malformed,
    Position,
    Skip,
    examine,
    next_cursor,
    reached,
)
from diffio_progress.core.stages import normalize_status

EXECUTION = "projects/p/locations/us-central1/jobs/inference/executions/inference-abc"
JOB = paths.job("proj-1", "gen-1", "inference")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_candidates_are_every_stored_spelling_of_pending_and_running() -> None:
    assert {"pending", "running", "queued", "processing"} <= set(CANDIDATE_STATUSES)
    assert {normalize_status(s) for s in CANDIDATE_STATUSES} == {"pending", "running"}
    assert len(CANDIDATE_STATUSES) <= 30  # Firestore's limit for "in"


@pytest.mark.parametrize(
    ("path", "job", "expected"),
    [
        (JOB, {"executionName": EXECUTION}, AskCloudRun(EXECUTION)),
        (JOB, {}, Skip()),
        (JOB, {"executionName": None}, Skip()),
        (JOB, {"executionName": ""}, Skip()),
        (
            ("other", "x", "jobs", "inference"),
            {"executionName": EXECUTION},
            Skip("not a stage document of the data contract"),
        ),
        (
            paths.job("proj-1", "gen-1", "upload"),
            {"executionName": EXECUTION},
            Skip("not a stage document of the data contract"),
        ),
    ],
    ids=["named", "no-field", "null", "empty", "outside-layout", "unknown-stage"],
)
def test_what_the_reaper_does_with_a_stage(
    path: paths.DocPath, job: dict[str, Any], expected: object
) -> None:
    assert examine(path, job) == expected


@pytest.mark.parametrize(
    "name",
    [42, "not-a-name", "projects/p/locations/l/jobs/j/executions/..", "x" * 5000],
    ids=["number", "text", "dot-segment", "huge"],
)
def test_a_malformed_execution_name_is_a_lookup_error_described_briefly(name: object) -> None:
    result = examine(JOB, {"executionName": name})
    assert isinstance(result, Malformed)
    assert "is not an execution resource name" in result.reason
    assert len(result.reason) < 300


def test_reached_stops_at_the_first_lookup_not_started() -> None:
    examined = [
        Skip(),
        AskCloudRun("a"),
        Malformed("m"),
        AskCloudRun("b"),
        Skip(),
        AskCloudRun("c"),
    ]
    assert reached(examined, started=0) == 1
    assert reached(examined, started=1) == 3
    assert reached(examined, started=2) == 5
    assert reached(examined, started=3) == 6
    assert reached([Skip(), Malformed("m")], started=0) == 2


def position(second: int, name: str = "a") -> Position:
    return Position(T0 + timedelta(seconds=second), paths.job("p", name, "inference"))


def test_next_cursor_goes_on_after_the_last_document_got_through() -> None:
    page = [position(1), position(2), position(3)]
    assert next_cursor(Cursor(4, None), page, 2, batch=3) == Cursor(4, position(2))
    assert next_cursor(Cursor(4, None), page, 3, batch=3) == Cursor(4, position(3))


def test_the_end_of_the_candidates_starts_a_new_lap() -> None:
    assert next_cursor(Cursor(4, position(9)), [], 0, batch=3) == Cursor(5, None)
    page = [position(1), position(2)]
    assert next_cursor(Cursor(4, None), page, 2, batch=3) == Cursor(5, None)
    # Not got through to its end: the same lap goes on.
    assert next_cursor(Cursor(4, None), page, 1, batch=3) == Cursor(4, position(1))


@given(
    candidates=st.integers(0, 60),
    batch=st.integers(1, 12),
    # How many lookups each call manages to start (at least one: the first always starts).
    capacities=st.lists(st.integers(1, 12), min_size=1, max_size=8),
)
def test_every_candidate_is_reached_in_each_lap_whatever_is_in_front_of_it(
    candidates: int, batch: int, capacities: list[int]
) -> None:
    """A model of the query: candidates in order, the page after the cursor, ``batch`` long.

    A call gets through as many lookups as it starts, whatever their outcome (a hung
    execution's ends in an error), so nothing can hold the cursor; each lap visits
    every candidate exactly once, in order.
    """
    order = [position(i, f"g{i:03}") for i in range(candidates)]
    cursor = Cursor()
    visited: list[Position] = []
    for call in range(10 * (candidates + 1)):
        start = 0 if cursor.after is None else order.index(cursor.after) + 1
        page = order[start : start + batch]
        examined = [AskCloudRun(str(i)) for i in range(len(page))]
        started = min(capacities[call % len(capacities)], len(page))
        done = reached(examined, started)
        visited += page[:done]
        cursor = next_cursor(cursor, page, done, batch)
        if cursor.lap == 1:
            break
    assert cursor == Cursor(1, None)
    assert visited == order
