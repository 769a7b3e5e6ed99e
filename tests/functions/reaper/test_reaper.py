"""One reaper call on the emulator: dead executions fail their stage; nothing else is touched."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from diffio_progress.core import paths
from diffio_progress.core.reaping import Summary
from diffio_progress.functions.reaper import store as reaper_store
from diffio_progress.functions.reaper.sweep import Reaper
from diffio_progress.tools import cloud_run_standin as replies
from diffio_progress.tools.cloud_run_standin import CloudRunStandIn
from tests.functions.reaper.stages import OOM, RUNNING_JOB, Stages
from tests.log_records import Records
from tests.project import ROOT


def without_time(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "updatedAt"}


@pytest.mark.parametrize(
    ("reply", "job_state", "error", "details"),
    [
        (replies.failed, "FAILED", "Cloud Run execution failed", OOM),
        (
            replies.cancelled,
            "CANCELLED",
            "Cloud Run execution cancelled",
            "The execution was cancelled",
        ),
    ],
    ids=["failed", "cancelled"],
)
def test_a_dead_execution_fails_its_stage_in_firestore(
    stages: Stages,
    make_reaper: Callable[..., Reaper],
    reply: Callable[[str], replies.Reply],
    job_state: str,
    error: str,
    details: str,
) -> None:
    path = stages.add(reply)
    before = stages.read(path)

    assert make_reaper()() == Summary(checked=1, failed=1, lookup_errors=0)

    after = stages.read(path)
    assert without_time(after) == {
        **RUNNING_JOB,
        "executionName": before["executionName"],
        "status": "failed",
        "jobState": job_state,
        "error": error,
        "errorDetails": details,
        "statusMessage": None,
    }
    assert after["updatedAt"] > before["updatedAt"]  # a server timestamp: the write is news


def test_the_stored_error_and_details_win_and_a_pending_stage_is_reaped_too(
    stages: Stages, make_reaper: Callable[..., Reaper]
) -> None:
    own = stages.add(replies.failed, error="Model crashed", errorDetails="CUDA error at step 12")
    queued = stages.add(replies.failed, status="pending", progress=0, jobState="PENDING")

    assert make_reaper()() == Summary(checked=2, failed=2)

    assert {k: stages.read(own)[k] for k in ("status", "error", "errorDetails")} == {
        "status": "failed",
        "error": "Model crashed",
        "errorDetails": "CUDA error at step 12",
    }
    assert {k: stages.read(queued)[k] for k in ("status", "progress", "jobState")} == {
        "status": "failed",
        "progress": 0,
        "jobState": "FAILED",
    }


def test_an_execution_that_succeeded_without_a_result_fails_its_stage(
    stages: Stages, make_reaper: Callable[..., Reaper]
) -> None:
    # The worker exited cleanly and never wrote complete: nothing else ever will.
    silent = stages.add(replies.succeeded)
    queued = stages.add(replies.succeeded, status="pending", progress=0, jobState="PENDING")
    said = stages.add(replies.succeeded, error="Upload failed", errorDetails="503 from storage")
    before = stages.read(silent)

    assert make_reaper()() == Summary(checked=3, failed=3)

    assert without_time(stages.read(silent)) == {
        **RUNNING_JOB,
        "executionName": before["executionName"],
        "status": "failed",
        "jobState": "SUCCEEDED",
        "error": "Worker exited without reporting a result",
        "errorDetails": None,
        "statusMessage": None,
    }
    assert stages.read(queued)["status"] == "failed"
    assert {k: stages.read(said)[k] for k in ("error", "errorDetails", "jobState")} == {
        "error": "Upload failed",
        "errorDetails": "503 from storage",
        "jobState": "SUCCEEDED",
    }
    # A second call finds nothing left to end.
    assert make_reaper()() == Summary()


@pytest.mark.parametrize("reply", [replies.running, replies.pending])
def test_a_live_execution_writes_nothing(
    stages: Stages, make_reaper: Callable[..., Reaper], reply: Callable[[str], replies.Reply]
) -> None:
    path = stages.add(reply)
    before = stages.read(path)

    assert make_reaper()() == Summary(checked=1)

    assert stages.read(path) == before


def test_malformed_missing_and_denied_executions_are_lookup_errors_named_by_path(
    stages: Stages,
    standin: CloudRunStandIn,
    make_reaper: Callable[..., Reaper],
    reaper_logs: Records,
) -> None:
    malformed = stages.add(executionName="projects/p/locations/l/jobs/j/executions/..")
    missing = stages.add(None)  # the stand-in does not know it: 404
    denied = stages.add(lambda name: replies.http_error(403, "Permission denied"))
    before = {path: stages.read(path) for path in (malformed, missing, denied)}

    assert make_reaper()() == Summary(checked=3, lookup_errors=3)

    assert {path: stages.read(path) for path in before} == before
    warnings = reaper_logs.warnings()
    assert len(warnings) == 3  # one each, and none from the lookup itself
    for path, reason in [
        (malformed, "is not an execution resource name"),
        (missing, "HTTP 404"),
        (denied, "HTTP 403"),
    ]:
        [line] = [w for w in warnings if "/".join(path) in w]
        assert reason in line
    assert standin.requests(stages.execution(missing)) == 1


def test_a_stage_without_an_execution_name_is_never_touched(
    stages: Stages, standin: CloudRunStandIn, make_reaper: Callable[..., Reaper]
) -> None:
    unnamed = [stages.add(executionName=None), stages.add(executionName="")]
    before = [stages.read(path) for path in unnamed]

    assert make_reaper()() == Summary()

    assert [stages.read(path) for path in unnamed] == before
    assert standin.total_requests() == 0


def test_only_stale_unfinished_stages_of_the_contract_are_looked_at(
    stages: Stages,
    standin: CloudRunStandIn,
    make_reaper: Callable[..., Reaper],
    reaper_logs: Records,
) -> None:
    fresh = stages.add(replies.failed, age=timedelta(seconds=10))
    done = stages.add(replies.failed, status="complete", progress=100)
    failed = stages.add(replies.failed, status="failed", error="worker said so")
    synonym = stages.add(replies.failed, status="processing")
    outside = ("other", "x", "jobs", "inference")
    stages.db.document(*outside).set(
        {
            **RUNNING_JOB,
            "executionName": replies.execution_name("x"),
            "updatedAt": stages.now - timedelta(minutes=5),
        }
    )
    standin.script(replies.execution_name("x"), replies.failed(replies.execution_name("x")))
    untouched = {p: stages.read(p) for p in (fresh, done, failed, outside)}

    assert make_reaper()() == Summary(checked=1, failed=1)

    assert {p: stages.read(p) for p in untouched} == untouched
    assert stages.read(synonym)["status"] == "failed"
    assert [w for w in reaper_logs.warnings() if "/".join(outside) in w]
    assert standin.requests(stages.execution(fresh)) == 0


def test_the_query_has_its_composite_index_declared_for_firebase_deploy() -> None:
    declared = json.loads((ROOT / "firestore.indexes.json").read_text())["indexes"]
    wanted = {
        "collectionGroup": paths.JOBS,
        "queryScope": "COLLECTION_GROUP",
        "fields": [
            {"fieldPath": reaper_store.STATUS, "order": "ASCENDING"},
            {"fieldPath": reaper_store.UPDATED_AT, "order": "ASCENDING"},
        ],
    }
    assert wanted in declared
