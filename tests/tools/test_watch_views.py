"""What `watch` prints for a body: the stage, queue and transcription lines, whatever it is sent."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from diffio_progress.tools.watch_views import (
    JsonView,
    RichView,
    queue_line,
    stage_line,
    transcription_line,
)
from tests.spec_example import PENDING_STAGE as PENDING

QUEUED: dict[str, Any] = {
    "generationId": "gen-q",
    "apiProjectId": "proj-q",
    "status": "pending",
    "hasVideo": False,
    "preProcessing": PENDING,
    "inference": PENDING,
    "transcription": {"status": "pending"},
    "stage": "preProcessing",
    "stageProgress": {"stage": "preProcessing", "index": 1, "count": 2, "progress": 0},
    "queue": {"position": 3, "message": "Waiting for a GPU"},
}


@pytest.mark.parametrize(
    ("queue", "line"),
    [
        ({"position": 3, "message": "Waiting for a GPU"}, "Queued: position 3 (Waiting for a GPU)"),
        ({"position": 0, "message": "Next"}, "Queued: next in line (Next)"),
        ({"position": 1, "message": None}, "Queued: position 1"),
        ({"position": 1, "message": ""}, "Queued: position 1"),
        ({"position": 1, "message": 5}, "Queued: position 1"),
        ({"position": "1"}, None),
        ({"position": True}, None),
        ({"message": "m"}, None),
        ("position 1", None),
        (None, None),
    ],
)
def test_queue_line(queue: Any, line: str | None) -> None:
    assert queue_line({"queue": queue}) == line


@pytest.mark.parametrize(
    ("stage_progress", "line"),
    [
        ({"stage": "inference", "index": 2, "count": 3, "progress": 5}, "Stage 2 of 3: Inference"),
        ({"stage": "restoredVideo", "index": 3, "count": 3}, "Stage 3 of 3: Restored video"),
        ({"stage": "upscaling", "index": 4, "count": 4}, "Stage 4 of 4: upscaling"),
        ({"index": 1, "count": 2}, "Stage 1 of 2"),
        ({"stage": "inference", "index": "2", "count": 3}, None),
        ({"stage": "inference", "index": 2}, None),
        ("inference", None),
        (None, None),
    ],
)
def test_stage_line(stage_progress: Any, line: str | None) -> None:
    assert stage_line({"stageProgress": stage_progress}) == line


@pytest.mark.parametrize(
    ("transcription", "line"),
    [
        ({"status": "available"}, "Transcription: available"),
        ({"status": "pending"}, "Transcription: pending"),
        ({"status": 1}, None),
        ("available", None),
        (None, None),
    ],
)
def test_transcription_line(transcription: Any, line: str | None) -> None:
    assert transcription_line({"transcription": transcription}) == line


def rendered(*bodies: dict[str, Any]) -> str:
    """What the live view leaves on a file after these answers (its final frame)."""
    out = io.StringIO()
    view = RichView(out, "gen-q")
    for body in bodies:
        view.update(body)
    view.close()
    return out.getvalue()


def test_the_live_view_shows_the_queue_transcription_and_stage() -> None:
    out = rendered(QUEUED)
    assert "Generation gen-q (proj-q, audio): pending\nStage 1 of 2: Preprocessing\n" in out
    assert "Queued: position 3 (Waiting for a GPU)" in out
    assert "Transcription: pending" in out


def test_the_queue_line_goes_once_the_queue_is_gone() -> None:
    running = {
        **{k: v for k, v in QUEUED.items() if k != "queue"},
        "status": "processing",
        "preProcessing": {**PENDING, "status": "running", "progress": 40},
        "stageProgress": {"stage": "preProcessing", "index": 1, "count": 2, "progress": 40},
    }
    out = rendered(QUEUED, running)
    assert "Queued" not in out
    assert "processing\nStage 1 of 2: Preprocessing\nTranscription: pending\n" in out
    assert "40%" in out


def test_text_from_the_server_is_shown_as_is_not_as_markup() -> None:
    hostile = {
        **QUEUED,
        "generationId": "gen-[bold]x[/]",
        "queue": {"position": 1, "message": "[/] [red]GPU"},
    }
    out = rendered(hostile)
    assert "gen-[bold]x[/]" in out
    assert "Queued: position 1 ([/] [red]GPU)" in out


def test_a_malformed_body_is_drawn_without_crashing() -> None:
    body = {
        "status": "processing",
        "inference": {"status": "running", "progress": float("nan")},
        "stageProgress": {"index": 1},
        "queue": [1],
        "transcription": "yes",
    }
    out = rendered(body)
    assert "processing" in out and "Queued" not in out and "Transcription" not in out


def test_json_lines_are_the_whole_body() -> None:
    out, err = io.StringIO(), io.StringIO()
    JsonView(out, err).update(QUEUED)
    assert json.loads(out.getvalue()) == QUEUED
    assert out.getvalue().count("\n") == 1
