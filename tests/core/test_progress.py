"""The pure core (progress.py): the contract's composition rules 3-8 on plain data."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytest

from diffio_progress.core.progress import compose
from diffio_progress.core.stages import (
    LiveExecution,
    Stage,
    apply_live,
    clamp_progress,
    live_lookups,
    normalize_status,
    overall_status,
    read_stage,
)
from tests import spec_example

STAGE_KEYS = {"jobId", "jobState", "status", "progress", "statusMessage", "error", "errorDetails"}
PENDING_STAGE = spec_example.PENDING_STAGE
COMPLETE_STAGE = spec_example.COMPLETE_STAGE
EXECUTION = "projects/p/locations/us-central1/jobs/inference/executions/inference-abc"


def body(
    project: Mapping[str, Any], jobs: Mapping[str, Mapping[str, Any] | None] | None = None
) -> dict[str, Any]:
    return compose("gen-1", "proj-1", project, jobs or {})


def test_the_seed_example_is_composed_exactly_plus_rule_9s_current_stage() -> None:
    jobs = {
        "preProcessing": {"jobId": "job-pre", "jobState": "SUCCEEDED", "status": "complete"},
        "inference": {
            "jobId": "job-cloud-run-gpu",
            "jobState": "RUNNING",
            "status": "running",
            "progress": 45,
            "statusMessage": "Processing audio",
        },
        "restoredVideo": {
            "jobId": "job-restored",
            "jobState": "PENDING",
            "status": "pending",
            "progress": 0,
            "statusMessage": "Queued",
        },
    }
    composed = compose("gen-123", "proj-123", {"userId": "u", "hasVideo": True}, jobs)
    assert composed == spec_example.RESPONSE_WITH_STAGE


@pytest.mark.parametrize(
    ("project", "stages"),
    [
        ({"hasVideo": False}, ["preProcessing", "inference"]),
        ({}, ["preProcessing", "inference"]),  # missing means false
        ({"hasVideo": "true"}, ["preProcessing", "inference"]),  # malformed means missing
        ({"hasVideo": 1}, ["preProcessing", "inference"]),
        ({"hasVideo": None}, ["preProcessing", "inference"]),
        ({"hasVideo": True}, ["preProcessing", "inference", "restoredVideo"]),
    ],
)
def test_rule_3_audio_has_two_stages_video_three(
    project: dict[str, Any], stages: list[str]
) -> None:
    jobs = {name: {"status": "running"} for name in ("preProcessing", "inference", "restoredVideo")}
    result = body(project, jobs)
    assert [k for k in result if k in ("preProcessing", "inference", "restoredVideo")] == stages
    assert result["hasVideo"] is (stages[-1] == "restoredVideo")
    assert list(result)[:4] == ["generationId", "apiProjectId", "status", "hasVideo"]


def test_rule_3_an_audio_project_has_no_restored_video_key_even_with_its_job() -> None:
    jobs = {"restoredVideo": {"status": "failed", "error": "should not show"}}
    result = body({"hasVideo": False}, jobs)
    assert "restoredVideo" not in result
    assert result["status"] == "pending"
    assert "error" not in result


@pytest.mark.parametrize(
    "job",
    [
        None,
        {},
        {"status": "running", "progress": 10},
        {"jobId": "j", "jobState": "FAILED", "status": "failed", "error": "e", "errorDetails": "d"},
        {"progress": "x", "jobId": 5, "statusMessage": {"a": 1}, "unknown": "ignored"},
    ],
)
def test_rule_4_every_stage_object_has_exactly_the_seven_keys(job: dict[str, Any] | None) -> None:
    assert set(read_stage(job).to_dict()) == STAGE_KEYS


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (45, 45),
        (45.5, 45.5),
        (0, 0),
        (100, 100),
        (-1, 0),
        (-0.5, 0),
        (101, 100),
        (1e9, 100),
        (math.inf, 100),
        (-math.inf, 0),
        (math.nan, 0),
        (True, 0),  # a bool is not a number here
        (False, 0),
        ("50", 0),
        ("", 0),
        (None, 0),
        ([50], 0),
        ({"value": 50}, 0),
    ],
)
def test_rule_4_progress_is_clamped_and_non_numbers_count_as_zero(
    value: object, expected: float
) -> None:
    assert clamp_progress(value) == expected
    stage = read_stage({"status": "running", "progress": value}).to_dict()
    assert stage["progress"] == expected


@pytest.mark.parametrize("progress", [0, 30, -5, 250, "x", None])
def test_rule_4_a_complete_stage_reports_100(progress: object) -> None:
    assert read_stage({"status": "complete", "progress": progress}).to_dict()["progress"] == 100


@pytest.mark.parametrize("video", [False, True])
def test_rule_5_a_stage_without_a_job_document_is_pending_0(video: bool) -> None:
    result = body({"hasVideo": video}, {"preProcessing": None})
    names = ["preProcessing", "inference"] + (["restoredVideo"] if video else [])
    for name in names:
        assert result[name] == PENDING_STAGE
    assert result["status"] == "pending"


@pytest.mark.parametrize(
    "pre_job",
    [
        None,
        {"status": "pending", "progress": 0},
        {"status": "running", "progress": 20, "jobId": "job-pre", "statusMessage": "Decoding"},
    ],
)
def test_rule_6_mp3_ready_makes_pre_processing_complete(pre_job: dict[str, Any] | None) -> None:
    result = body({"audioOriginalMp3Ready": True}, {"preProcessing": pre_job})
    assert result["preProcessing"]["status"] == "complete"
    assert result["preProcessing"]["progress"] == 100
    assert result["inference"] == PENDING_STAGE
    assert result["status"] == "processing"


def test_rule_6_a_failed_pre_processing_job_reports_complete_without_its_error() -> None:
    failed = {"status": "failed", "progress": 60, "jobId": "job-pre", "error": "late crash"}
    result = body({"audioOriginalMp3Ready": True}, {"preProcessing": failed})
    assert result["preProcessing"]["status"] == "complete"
    assert result["preProcessing"]["progress"] == 100
    assert result["preProcessing"]["error"] is None
    assert result["preProcessing"]["jobId"] == "job-pre"
    assert result["status"] == "processing"
    assert "error" not in result


def test_rule_6_without_a_job_document_the_stage_is_otherwise_empty() -> None:
    result = body({"audioOriginalMp3Ready": True})
    assert result["preProcessing"] == COMPLETE_STAGE


@pytest.mark.parametrize("ready", [False, None, "true", 1])
def test_rule_6_only_a_true_mp3_flag_counts(ready: object) -> None:
    result = body({"audioOriginalMp3Ready": ready})
    assert result["preProcessing"] == PENDING_STAGE


def test_rule_6_with_inference_complete_an_mp3_ready_audio_project_is_complete() -> None:
    result = body({"audioOriginalMp3Ready": True}, {"inference": {"status": "complete"}})
    assert result["status"] == "complete"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("pending", "pending"),
        ("queued", "pending"),
        ("waiting", "pending"),
        ("running", "running"),
        ("processing", "running"),
        ("in_progress", "running"),
        ("started", "running"),
        ("complete", "complete"),
        ("completed", "complete"),
        ("succeeded", "complete"),
        ("success", "complete"),
        ("done", "complete"),
        ("failed", "failed"),
        ("error", "failed"),
        ("cancelled", "failed"),
        ("canceled", "failed"),
        ("RUNNING", "running"),
        ("Complete", "complete"),
        ("SUCCEEDED", "complete"),
        ("In_Progress", "running"),
        (" failed ", "failed"),
        ("FAILED", "failed"),
        ("unknown", "pending"),
        ("in progress", "pending"),
        ("", "pending"),
        (None, "pending"),
        (1, "pending"),
        (True, "pending"),
        (["complete"], "pending"),
    ],
)
def test_stored_status_is_read_leniently(raw: object, status: str) -> None:
    assert normalize_status(raw) == status


@pytest.mark.parametrize(
    ("statuses", "overall"),
    [
        (["pending", "pending"], "pending"),
        (["pending", "pending", "pending"], "pending"),
        (["complete", "complete"], "complete"),
        (["complete", "complete", "complete"], "complete"),
        (["complete", "pending"], "processing"),
        (["running", "pending"], "processing"),
        (["complete", "running"], "processing"),
        (["complete", "complete", "pending"], "processing"),  # video needs every stage
        (["failed", "pending"], "failed"),
        (["complete", "failed"], "failed"),
        (["complete", "complete", "failed"], "failed"),
        (["running", "failed", "complete"], "failed"),
    ],
)
def test_rule_7_overall_status(statuses: list[str], overall: str) -> None:
    assert overall_status(statuses) == overall


@pytest.mark.parametrize(
    ("jobs", "error", "details"),
    [
        (
            {"inference": {"status": "failed", "error": "GPU lost", "errorDetails": "OOM"}},
            "GPU lost",
            "OOM",
        ),
        ({"inference": {"status": "failed"}}, "inference failed", None),
        ({"preProcessing": {"status": "error"}}, "preProcessing failed", None),
        ({"restoredVideo": {"status": "CANCELLED"}}, "restoredVideo failed", None),
        ({"inference": {"status": "failed", "errorDetails": "trace"}}, "inference failed", "trace"),
        ({"inference": {"status": "failed", "error": 42}}, "inference failed", None),
        # The first failed stage in order speaks, whatever order the documents came in.
        (
            {
                "restoredVideo": {"status": "failed", "error": "video", "errorDetails": "v"},
                "inference": {"status": "failed", "error": "audio", "errorDetails": "a"},
            },
            "audio",
            "a",
        ),
        (
            {
                "inference": {"status": "failed", "error": "audio"},
                "preProcessing": {"status": "failed", "errorDetails": "p"},
            },
            "preProcessing failed",
            "p",
        ),
    ],
)
def test_rule_8_top_level_error_comes_from_the_first_failed_stage(
    jobs: dict[str, dict[str, Any]], error: str, details: str | None
) -> None:
    result = body({"hasVideo": True}, jobs)
    assert result["status"] == "failed"
    assert result["error"] == error
    assert "errorDetails" in result
    assert result["errorDetails"] == details


@pytest.mark.parametrize(
    "jobs",
    [
        {},
        {"preProcessing": {"status": "running", "error": "transient", "errorDetails": "x"}},
        {"preProcessing": {"status": "complete"}, "inference": {"status": "complete"}},
    ],
)
def test_rule_8_error_keys_are_absent_unless_failed(jobs: dict[str, dict[str, Any]]) -> None:
    result = body({}, jobs)
    assert result["status"] != "failed"
    assert "error" not in result
    assert "errorDetails" not in result


def test_a_stage_keeps_its_worker_fields() -> None:
    job = {
        "jobId": "job-1",
        "jobState": "RUNNING",
        "status": "running",
        "progress": 30,
        "statusMessage": "Processing",
        "error": None,
        "errorDetails": None,
        "executionName": EXECUTION,
        "updatedAt": object(),
    }
    assert read_stage(job).to_dict() == {
        "jobId": "job-1",
        "jobState": "RUNNING",
        "status": "running",
        "progress": 30,
        "statusMessage": "Processing",
        "error": None,
        "errorDetails": None,
    }


@pytest.mark.parametrize("field", ["jobId", "jobState", "statusMessage", "error", "errorDetails"])
@pytest.mark.parametrize("value", [1, 2.5, True, ["x"], {"x": 1}, b"x"])
def test_a_malformed_text_field_is_treated_as_missing(field: str, value: object) -> None:
    stage = read_stage({"status": "running", "progress": 10, field: value}).to_dict()
    assert stage[field] is None
    assert stage["status"] == "running"


@pytest.mark.parametrize(
    ("execution", "looked_up"),
    [
        (EXECUTION, True),
        ("projects/example.com:p/locations/us-central1/jobs/j_1/executions/j_1-x7k2p", True),
        ("not/a/resource", False),
        ("projects/p/locations/l/jobs/j", False),
        (42, False),
        # An HTTP client would resolve these segments and ask for another resource.
        ("projects/p/locations/l/jobs/j/executions/..", False),
        ("projects/p/locations/l/jobs/../executions/e", False),
        ("projects/p/locations/l/jobs/j/executions/.", False),
        # These would change the URL's path, query or fragment.
        ("projects/p/locations/l/jobs/j/executions/e?alt=media", False),
        ("projects/p/locations/l/jobs/j/executions/e#x", False),
        ("projects/p/locations/l/jobs/j/executions/e%2F..", False),
        ("projects/p/locations/l/jobs/j/executions/e x", False),
    ],
)
def test_only_well_formed_execution_names_are_looked_up(execution: object, looked_up: bool) -> None:
    stages = {"inference": read_stage({"status": "running", "executionName": execution})}
    assert live_lookups(stages) == ({"inference": execution} if looked_up else {})


@pytest.mark.parametrize("status", ["complete", "failed"])
def test_terminal_stages_are_never_looked_up(status: str) -> None:
    stages = {"inference": read_stage({"status": status, "executionName": EXECUTION})}
    assert live_lookups(stages) == {}


@pytest.mark.parametrize(
    ("stage", "live", "expected"),
    [
        (Stage(status="running", progress=40), None, Stage(status="running", progress=40)),
        (
            Stage(status="running", progress=40, job_state="PENDING"),
            LiveExecution("RUNNING"),
            Stage(status="running", progress=40, job_state="RUNNING"),
        ),
        (
            Stage(status="running", progress=40),
            LiveExecution("FAILED", "Task exited with code 137"),
            Stage(
                status="failed",
                progress=40,
                job_state="FAILED",
                error="Cloud Run execution failed",
                error_details="Task exited with code 137",
            ),
        ),
        (
            Stage(status="pending", error="stored", error_details="stored details"),
            LiveExecution("CANCELLED", "cancelled by user"),
            Stage(
                status="failed",
                job_state="CANCELLED",
                error="stored",
                error_details="stored details",
            ),
        ),
        (
            Stage(status="complete", progress=100, job_state="SUCCEEDED"),
            LiveExecution("FAILED"),
            Stage(status="complete", progress=100, job_state="SUCCEEDED"),
        ),
    ],
)
def test_live_state_overrides_job_state_and_a_dead_worker_fails_its_stage(
    stage: Stage, live: LiveExecution | None, expected: Stage
) -> None:
    assert apply_live(stage, live) == expected


def test_compose_asks_the_lookup_only_for_live_stages_and_applies_its_answer() -> None:
    asked: list[dict[str, str]] = []

    def lookup(wanted: Mapping[str, str]) -> dict[str, LiveExecution]:
        asked.append(dict(wanted))
        return {"inference": LiveExecution("FAILED", "worker died")}

    jobs = {
        "preProcessing": {"status": "complete", "executionName": EXECUTION},
        "inference": {"status": "running", "progress": 60, "executionName": EXECUTION},
    }
    result = compose("gen-1", "proj-1", {}, jobs, lookup)
    assert asked == [{"inference": EXECUTION}]
    assert result["status"] == "failed"
    assert result["error"] == "Cloud Run execution failed"
    assert result["errorDetails"] == "worker died"
    assert result["inference"]["progress"] == 60
