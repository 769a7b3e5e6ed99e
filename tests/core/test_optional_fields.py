"""Rule 9 (optional_fields.py): transcription, stage, stageProgress and queue, only when true."""

from __future__ import annotations

from typing import Any

import pytest

from diffio_progress.core.progress import compose

RUNNING = {"status": "running", "progress": 45}
DONE = {"status": "complete"}
FAILED = {"status": "failed", "error": "Inference failed", "errorDetails": "OOM"}
QUEUE = {"position": 3, "message": "Waiting for a GPU"}


def body(
    jobs: dict[str, Any] | None = None, video: bool = False, **generation: Any
) -> dict[str, Any]:
    project = {"userId": "u", "hasVideo": video}
    return compose("gen-1", "proj-1", project, jobs or {}, generation=generation)


@pytest.mark.parametrize(
    ("jobs", "video", "stage", "index", "count", "progress"),
    [
        ({}, False, "preProcessing", 1, 2, 0),
        (
            {"preProcessing": {"status": "running", "progress": 30}},
            False,
            "preProcessing",
            1,
            2,
            30,
        ),
        ({"preProcessing": DONE, "inference": RUNNING}, False, "inference", 2, 2, 45),
        ({"preProcessing": DONE, "inference": DONE}, True, "restoredVideo", 3, 3, 0),
        # failed: the first failed stage, even when an earlier one is still running
        ({"preProcessing": RUNNING, "inference": FAILED}, False, "inference", 2, 2, 0),
        (
            {"preProcessing": DONE, "inference": DONE, "restoredVideo": FAILED},
            True,
            "restoredVideo",
            3,
            3,
            0,
        ),
    ],
)
def test_stage_is_the_first_unfinished_or_first_failed_stage(
    jobs: dict[str, Any], video: bool, stage: str, index: int, count: int, progress: int
) -> None:
    composed = body(jobs, video)
    assert composed["stage"] == stage
    assert composed["stageProgress"] == {
        "stage": stage,
        "index": index,
        "count": count,
        "progress": progress,
    }


def test_a_complete_generation_has_no_stage() -> None:
    composed = body({"preProcessing": DONE, "inference": DONE})
    assert composed["status"] == "complete"
    assert "stage" not in composed and "stageProgress" not in composed


def test_rule_6_counts_preprocessing_complete_when_the_mp3_is_ready() -> None:
    project = {"userId": "u", "audioOriginalMp3Ready": True}
    composed = compose("g", "p", project, {"inference": RUNNING})
    assert composed["stage"] == "inference"
    assert composed["stageProgress"]["index"] == 2


@pytest.mark.parametrize("status", ["pending", "available", "unavailable"])
def test_transcription_is_copied_when_its_status_is_known(status: str) -> None:
    assert body(transcription={"status": status})["transcription"] == {"status": status}


def test_transcription_carries_only_its_status() -> None:
    composed = body(transcription={"status": "available", "language": "en", "words": 1200})
    assert composed["transcription"] == {"status": "available"}


@pytest.mark.parametrize(
    "transcription",
    ["available", ["available"], 1, {"status": "AVAILABLE"}, {"status": "done"}, {}, {"status": 1}],
)
def test_a_malformed_transcription_is_absent_with_one_warning(
    transcription: Any, caplog: pytest.LogCaptureFixture
) -> None:
    composed = body(transcription=transcription)
    assert "transcription" not in composed
    warnings = [r for r in caplog.records if "transcription" in r.getMessage()]
    assert len(warnings) == 1


def test_an_older_generation_has_no_transcription_or_queue(
    caplog: pytest.LogCaptureFixture,
) -> None:
    composed = body({"preProcessing": DONE})
    assert "transcription" not in composed and "queue" not in composed
    assert not caplog.records


def test_queue_is_reported_while_inference_waits() -> None:
    assert body(queue=QUEUE)["queue"] == QUEUE
    assert body({"preProcessing": RUNNING}, queue=QUEUE)["queue"] == QUEUE
    zero = {"position": 0, "message": "Next"}
    assert body({"preProcessing": DONE}, queue=zero)["queue"] == zero


@pytest.mark.parametrize(
    ("jobs", "why"),
    [
        ({"preProcessing": DONE, "inference": RUNNING}, "inference running: stale"),
        ({"preProcessing": DONE, "inference": DONE}, "inference complete: stale"),
        ({"preProcessing": FAILED}, "the generation failed"),
        ({"preProcessing": DONE, "inference": FAILED}, "inference failed"),
    ],
)
def test_queue_is_absent_once_inference_started_or_anything_failed(
    jobs: dict[str, Any], why: str
) -> None:
    assert "queue" not in body(jobs, queue=QUEUE), why


@pytest.mark.parametrize(
    "queue",
    [
        {"position": -1, "message": "m"},
        {"position": 1.5, "message": "m"},
        {"position": 2.0, "message": "m"},
        {"position": True, "message": "m"},
        {"position": "3", "message": "m"},
        {"message": "m"},
        "position 3",
        [3, "m"],
        3,
    ],
)
def test_a_malformed_queue_is_absent_with_one_warning(
    queue: Any, caplog: pytest.LogCaptureFixture
) -> None:
    assert "queue" not in body(queue=queue)
    assert len([r for r in caplog.records if "queue" in r.getMessage()]) == 1


@pytest.mark.parametrize("message", [7, ["m"], {"text": "m"}, False])
def test_a_queue_message_that_is_not_a_string_is_null_and_the_position_stays(
    message: Any,
) -> None:
    assert body(queue={"position": 2, "message": message})["queue"] == {
        "position": 2,
        "message": None,
    }


def test_a_queue_without_a_message_reports_null() -> None:
    assert body(queue={"position": 4})["queue"] == {"position": 4, "message": None}
