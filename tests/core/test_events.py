"""The pure event rules: types and ranks, forward-only, which writes matter, the payload."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from diffio_progress.core.events import (
    COMPLETED_EVENT,
    EVENT_TYPES,
    FAILED_EVENT,
    PROCESSING_EVENT,
    QUEUED_EVENT,
    Target,
    build_payload,
    in_rank_order,
    is_new,
    kind_of,
    may_change_status,
    outbox_path,
    parse_target,
    rfc3339,
)
from diffio_progress.core.progress import compose


@pytest.mark.parametrize(
    ("status", "event_type", "rank", "payload_status"),
    [
        ("pending", QUEUED_EVENT, 0, "queued"),
        ("processing", PROCESSING_EVENT, 1, "processing"),
        ("complete", COMPLETED_EVENT, 2, "complete"),
        ("failed", FAILED_EVENT, 2, "error"),
    ],
)
def test_each_overall_status_is_one_event_type_with_its_rank(
    status: str, event_type: str, rank: int, payload_status: str
) -> None:
    kind = kind_of(status)
    assert (kind.event_type, kind.rank, kind.status) == (event_type, rank, payload_status)


@pytest.mark.parametrize(
    ("status", "recorded", "new"),
    [
        ("pending", [], True),
        ("processing", [], True),
        ("complete", [], True),
        ("processing", [QUEUED_EVENT], True),
        ("complete", [QUEUED_EVENT, PROCESSING_EVENT], True),
        ("failed", [QUEUED_EVENT], True),
        # Nothing twice, nothing backwards, nothing after the end.
        ("pending", [QUEUED_EVENT], False),
        ("processing", [PROCESSING_EVENT], False),
        ("pending", [PROCESSING_EVENT], False),
        ("processing", [COMPLETED_EVENT], False),
        ("failed", [COMPLETED_EVENT], False),
        ("complete", [FAILED_EVENT], False),
        ("complete", [COMPLETED_EVENT], False),
        # A skipped state is not invented afterwards.
        ("processing", [QUEUED_EVENT, COMPLETED_EVENT], False),
        # An outbox document of an unknown type blocks, rather than be outranked.
        ("complete", ["generation.mystery"], False),
    ],
)
def test_events_only_move_forward(status: str, recorded: list[str], new: bool) -> None:
    assert is_new(kind_of(status), recorded) is new


def test_rank_order_is_the_order_a_client_receives() -> None:
    assert in_rank_order([COMPLETED_EVENT, QUEUED_EVENT, PROCESSING_EVENT]) == [
        QUEUED_EVENT,
        PROCESSING_EVENT,
        COMPLETED_EVENT,
    ]
    assert set(EVENT_TYPES) == {QUEUED_EVENT, PROCESSING_EVENT, COMPLETED_EVENT, FAILED_EVENT}


@pytest.mark.parametrize(
    ("document", "target"),
    [
        ("apiProjects/p/generations/g", Target("p", "g")),
        ("apiProjects/p/generations/g/jobs/inference", Target("p", "g", "inference")),
        ("apiProjects/p/generations/g/jobs/other", Target("p", "g", "other")),
        ("apiProjects/p", None),
        ("apiProjects/p/generations/g/events/generation.queued", None),
        ("apiProjects/p/other/g", None),
        ("users/p/generations/g", None),
        ("apiProjects/p/generations/g/jobs/inference/x/y", None),
        ("apiProjects/p/generations/../jobs/inference", None),
        ("apiProjects/p/generations/__g__", None),
        ("apiProjects//generations/g", None),
        ("", None),
    ],
)
def test_only_the_two_trigger_patterns_are_targets(document: str, target: Target | None) -> None:
    assert parse_target(document) == target
    if target is not None:
        assert target.path == document


GEN = Target("p", "g")
JOB = Target("p", "g", "inference")


@pytest.mark.parametrize(
    ("target", "before", "after", "may"),
    [
        (GEN, None, {"generationId": "g"}, True),  # created: queued
        (GEN, {"generationId": "g"}, {"generationId": "g", "queue": {}}, False),
        (GEN, {"generationId": "g"}, None, False),  # deleted
        (JOB, {"status": "running", "progress": 10}, {"status": "running", "progress": 20}, False),
        (JOB, {"status": "running"}, {"status": "processing"}, False),  # synonyms
        (JOB, {"status": "running"}, {"status": "RUNNING "}, False),
        (JOB, None, {"status": "pending"}, False),  # created as pending: as if missing
        (JOB, None, {"status": "running"}, True),
        (JOB, {"status": "pending"}, {"status": "running"}, True),
        (JOB, {"status": "running"}, {"status": "complete"}, True),
        (JOB, {"status": "running"}, {"status": "failed"}, True),
        (JOB, {"status": "complete"}, None, True),  # deleted: pending again
        (JOB, {"status": "running"}, {"status": 7}, True),  # malformed: reads as pending
        (Target("p", "g", "other"), {"status": "pending"}, {"status": "complete"}, False),
    ],
)
def test_only_writes_that_can_change_the_overall_status_matter(
    target: Target, before: dict[str, Any] | None, after: dict[str, Any] | None, may: bool
) -> None:
    assert may_change_status(target, before, after) is may


def test_the_outbox_lives_beside_the_jobs_under_neither_trigger_pattern() -> None:
    path = outbox_path("p", "g", QUEUED_EVENT)
    assert path == ("apiProjects", "p", "generations", "g", "events", QUEUED_EVENT)
    assert parse_target("/".join(path)) is None


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), "2025-01-02T03:04:05.678Z"),
        (
            datetime(2025, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2))),
            "2025-01-02T03:04:05.000Z",
        ),
        (datetime(2025, 1, 2, 3, 4, 5), "2025-01-02T03:04:05.000Z"),
    ],
)
def test_created_at_is_rfc3339_utc_with_z(moment: datetime, text: str) -> None:
    assert rfc3339(moment) == text


NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
GENERATION = {"apiKeyId": "key_1", "modelKey": "diffio-4.6-pro", "userId": "u"}


def _body(jobs: dict[str, Any], video: bool = False, **generation: Any) -> dict[str, Any]:
    return compose("g", "p", {"userId": "u", "hasVideo": video}, jobs, None, generation)


def test_the_payload_has_every_field_of_section_1() -> None:
    body = _body({"preProcessing": {"status": "running", "progress": 5}})
    payload = build_payload(body, GENERATION, "evt_" + "a" * 32, NOW)
    assert payload == {
        "eventType": PROCESSING_EVENT,
        "eventId": "evt_" + "a" * 32,
        "createdAt": "2025-06-01T12:00:00.000Z",
        "apiKeyId": "key_1",
        "apiProjectId": "p",
        "generationId": "g",
        "status": "processing",
        "hasVideo": False,
        "modelKey": "diffio-4.6-pro",
        "error": None,
        "errorDetails": None,
    }


def test_a_failed_event_carries_the_error_a_poll_would_show() -> None:
    jobs = {
        "preProcessing": {"status": "complete"},
        "inference": {"status": "failed", "errorDetails": "CUDA out of memory"},
    }
    body = _body(jobs, video=True, transcription={"status": "unavailable"})
    payload = build_payload(body, GENERATION, "evt_x", NOW)
    assert payload["eventType"] == FAILED_EVENT and payload["status"] == "error"
    assert payload["error"] == body["error"] == "inference failed"
    assert payload["errorDetails"] == "CUDA out of memory"
    assert payload["hasVideo"] is True
    assert payload["transcription"] == {"status": "unavailable"}


@pytest.mark.parametrize(
    ("generation", "api_key_id", "model_key"),
    [
        ({}, None, None),
        ({"apiKeyId": 42, "modelKey": ["diffio"]}, None, None),
        ({"apiKeyId": "key_2", "modelKey": None}, "key_2", None),
    ],
)
def test_a_missing_or_malformed_key_id_or_model_is_null(
    generation: dict[str, Any], api_key_id: str | None, model_key: str | None
) -> None:
    payload = build_payload(_body({}), generation, "evt_x", NOW)
    assert payload["apiKeyId"] == api_key_id and payload["modelKey"] == model_key
    assert payload["eventType"] == QUEUED_EVENT and payload["status"] == "queued"


def test_transcription_is_absent_unless_valid() -> None:
    body = _body({}, transcription={"status": "typing"})
    assert "transcription" not in build_payload(body, GENERATION, "evt_x", NOW)
    assert "transcription" not in build_payload(_body({}), GENERATION, "evt_x", NOW)
