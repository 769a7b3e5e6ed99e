"""The pure job-document rule: forward-only, terminal-safe, and the update for a dead execution."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from diffio_progress.core.job_updates import (
    JOB_FIELDS,
    Change,
    Complete,
    ExecutionEnded,
    Fail,
    Progress,
    Start,
    next_document,
)
from diffio_progress.core.stages import LiveExecution
from tests import spec_example

EXECUTION = "projects/p/locations/us-central1/jobs/inference/executions/inference-abc"
OTHER_EXECUTION = "projects/p/locations/us-central1/jobs/inference/executions/inference-xyz"
OOM = "Task inference-abc-task0 exited with code 137: out of memory"
RUNNING_JOB: dict[str, Any] = {**spec_example.RESPONSE["inference"], "executionName": EXECUTION}


def ended(state: str, message: str | None = OOM, name: str = EXECUTION) -> ExecutionEnded:
    return ExecutionEnded(name, LiveExecution(state, message))


@pytest.mark.parametrize(
    ("stored", "state", "expected"),
    [
        pytest.param(
            {},
            "FAILED",
            {"error": "Cloud Run execution failed", "errorDetails": OOM},
            id="failed-summary-and-condition-message",
        ),
        pytest.param(
            {},
            "CANCELLED",
            {"error": "Cloud Run execution cancelled", "errorDetails": OOM},
            id="cancelled-summary",
        ),
        pytest.param(
            {"error": "Model crashed", "errorDetails": "CUDA error at step 12"},
            "FAILED",
            {"error": "Model crashed", "errorDetails": "CUDA error at step 12"},
            id="stored-error-and-details-win",
        ),
        pytest.param(
            {"status": "pending", "progress": 0, "jobState": "PENDING"},
            "FAILED",
            {"error": "Cloud Run execution failed", "errorDetails": OOM, "progress": 0},
            id="pending-stage-too",
        ),
        pytest.param(
            {"status": "processing"},
            "FAILED",
            {"error": "Cloud Run execution failed", "errorDetails": OOM},
            id="status-synonym-read-as-running",
        ),
    ],
)
def test_a_dead_execution_fails_its_stage_as_the_live_mapping_says(
    stored: dict[str, Any], state: str, expected: dict[str, Any]
) -> None:
    document = next_document({**RUNNING_JOB, **stored}, ended(state))
    assert document == {
        **RUNNING_JOB,
        "progress": 45,
        "status": "failed",
        "jobState": state,
        "statusMessage": None,
        **expected,
    }


def test_without_a_condition_message_the_details_stay_empty() -> None:
    document = next_document(RUNNING_JOB, ended("FAILED", message=None))
    assert document is not None
    assert (document["error"], document["errorDetails"]) == ("Cloud Run execution failed", None)


@pytest.mark.parametrize("state", ["RUNNING", "PENDING"])
def test_a_live_execution_that_has_not_ended_writes_nothing(state: str) -> None:
    assert next_document(RUNNING_JOB, ended(state)) is None


def test_an_execution_that_succeeded_without_a_result_fails_the_stage() -> None:
    document = next_document(RUNNING_JOB, ended("SUCCEEDED", message="Execution completed"))
    assert document is not None
    assert (document["status"], document["jobState"]) == ("failed", "SUCCEEDED")
    assert (document["error"], document["errorDetails"]) == (
        "Worker exited without reporting a result",
        None,
    )


@pytest.mark.parametrize(
    "current",
    [
        pytest.param({**RUNNING_JOB, "status": "complete", "progress": 100}, id="complete"),
        pytest.param({**RUNNING_JOB, "status": "failed", "error": "worker said"}, id="failed"),
        pytest.param({**RUNNING_JOB, "status": "succeeded"}, id="complete-synonym"),
        pytest.param({**RUNNING_JOB, "executionName": OTHER_EXECUTION}, id="another-execution"),
        pytest.param({**RUNNING_JOB, "executionName": None}, id="no-execution"),
        pytest.param(None, id="no-document"),
    ],
)
def test_a_dead_execution_never_overwrites_a_finished_or_moved_on_stage(
    current: dict[str, Any] | None,
) -> None:
    assert next_document(current, ended("FAILED")) is None


# -- the rule over any sequence of updates -------------------------------------------

changes = st.one_of(
    st.builds(
        Start,
        job_state=st.sampled_from(["PENDING", "RUNNING"]),
        execution_name=st.sampled_from([None, EXECUTION, OTHER_EXECUTION]),
        message=st.text(),
    ),
    st.builds(Progress, percent=st.floats(0, 100), message=st.none() | st.text(max_size=5)),
    st.builds(Complete),
    st.builds(Fail, error=st.text(min_size=1, max_size=5)),
    st.builds(
        ExecutionEnded,
        execution_name=st.sampled_from([EXECUTION, OTHER_EXECUTION]),
        live=st.builds(
            LiveExecution,
            job_state=st.sampled_from(["FAILED", "CANCELLED", "RUNNING", "SUCCEEDED"]),
            message=st.none() | st.text(max_size=5),
        ),
    ),
)


@given(st.lists(changes, max_size=30))
def test_any_sequence_keeps_progress_monotonic_and_terminal_final(
    sequence: list[Change],
) -> None:
    doc: dict[str, Any] | None = None
    for change in sequence:
        after = next_document(doc, change)
        if doc is not None and doc["status"] in ("complete", "failed"):
            assert after is None
        if after is None:
            continue
        if doc is not None:
            assert after["progress"] >= doc["progress"]
        if isinstance(change, ExecutionEnded):
            assert after["status"] == "failed" and after["executionName"] == change.execution_name
        assert set(after) == set(JOB_FIELDS)
        doc = after
