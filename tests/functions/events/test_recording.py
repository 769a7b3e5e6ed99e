"""Events recorded from real writes on the emulator: what is read, what is recorded, what is not."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from diffio_progress.core.events import (
    COMPLETED_EVENT,
    FAILED_EVENT,
    PROCESSING_EVENT,
    QUEUED_EVENT,
)
from diffio_progress.tools.cloud_events import written_event
from tests.functions.events.harness import (
    GENERATION_ID,
    PROJECT_ID,
    Harness,
    Writes,
)
from tests.log_records import Records
from tests.project import TEST_PROJECT
from tests.seed import Seeder

EVENT_ID = re.compile(r"^evt_[0-9a-f]{32}$")
JOBS = [
    f"apiProjects/{PROJECT_ID}/generations/{GENERATION_ID}/jobs/{s}"
    for s in ("preProcessing", "inference")
]
OUTBOX = [
    f"apiProjects/{PROJECT_ID}/generations/{GENERATION_ID}/events/{t}"
    for t in (QUEUED_EVENT, PROCESSING_EVENT, COMPLETED_EVENT, FAILED_EVENT)
]


def test_creating_a_generation_records_queued_in_the_outbox(
    writes: Writes, harness: Harness
) -> None:
    handler = harness.handler()
    outcome = harness.send(handler, writes.generation())
    assert outcome.outcome == f"recorded {QUEUED_EVENT}"
    doc = harness.event_doc(QUEUED_EVENT)
    assert set(doc) == {
        "eventId",
        "eventType",
        "payload",
        "createdAt",
        "deliveredAt",
        "deliveredTo",
        "attempts",
        # docs/delivery-storage.md; no dueAt: with the sink off nothing is pending.
        "apiKeyId",
        "apiProjectId",
        "generationId",
        "mode",
        "rank",
        "expiresAt",
        "deliveries",
        "deliveryEndpointId",
        "deliveryStatus",
    }
    assert (doc["rank"], doc["mode"], doc["deliveries"], doc["deliveryStatus"]) == (
        0,
        "live",
        {},
        "skipped",
    )
    assert doc["expiresAt"] - doc["createdAt"] == timedelta(days=30)
    assert EVENT_ID.match(doc["eventId"]) and doc["eventType"] == QUEUED_EVENT
    assert (doc["deliveredAt"], doc["deliveredTo"], doc["attempts"]) == (None, [], 0)
    assert doc["payload"]["eventId"] == doc["eventId"]
    assert doc["payload"]["status"] == "queued"
    created = datetime.fromisoformat(doc["payload"]["createdAt"])
    assert abs(created - doc["createdAt"]) < timedelta(milliseconds=1)


def test_a_whole_audio_generation_records_queued_processing_completed(
    writes: Writes, harness: Harness
) -> None:
    handler = harness.handler()
    # Each event is handled right after its write, as Eventarc does when nothing is late.
    sequence = [
        lambda: writes.generation(),
        lambda: writes.job("preProcessing", "pending"),
        lambda: writes.job("inference", "pending"),
        lambda: writes.job("preProcessing", "running", 0),
        lambda: writes.job("preProcessing", "running", 50),
        lambda: writes.job("preProcessing", "complete", 100),
        lambda: writes.job("inference", "running", 0),
        lambda: writes.job("inference", "running", 70),
        lambda: writes.job("inference", "complete", 100),
    ]
    outcomes = [harness.send(handler, write()).outcome for write in sequence]
    assert [o for o in outcomes if o.startswith("recorded")] == [
        f"recorded {QUEUED_EVENT}",
        f"recorded {PROCESSING_EVENT}",
        f"recorded {COMPLETED_EVENT}",
    ]
    outbox = harness.outbox()
    assert set(outbox) == {QUEUED_EVENT, PROCESSING_EVENT, COMPLETED_EVENT}
    times = [outbox[t]["createdAt"] for t in (QUEUED_EVENT, PROCESSING_EVENT, COMPLETED_EVENT)]
    assert times == sorted(times)
    assert len({doc["eventId"] for doc in outbox.values()}) == 3
    completed = outbox[COMPLETED_EVENT]["payload"]
    assert completed["status"] == "complete" and completed["error"] is None


def test_a_failed_stage_records_failed_with_the_polls_error(
    writes: Writes, harness: Harness
) -> None:
    handler = harness.handler()
    harness.send(handler, writes.generation(transcription={"status": "pending"}))
    harness.send(handler, writes.job("preProcessing", "complete", 100))
    event = writes.job("inference", "failed", 40, error="Inference failed", errorDetails="OOM")
    assert harness.send(handler, event).outcome == f"recorded {FAILED_EVENT}"
    payload = harness.event_doc(FAILED_EVENT)["payload"]
    assert payload["status"] == "error"
    assert (payload["error"], payload["errorDetails"]) == ("Inference failed", "OOM")
    assert payload["transcription"] == {"status": "pending"}
    assert set(harness.outbox()) == {QUEUED_EVENT, PROCESSING_EVENT, FAILED_EVENT}


def test_a_progress_only_write_costs_no_firestore_call_at_all(
    writes: Writes, harness: Harness
) -> None:
    handler = harness.handler()
    harness.send(handler, writes.generation())
    harness.send(handler, writes.job("inference", "running", 10))
    for event in (
        writes.job("inference", "running", 20, statusMessage="Restoring speech"),
        writes.job("inference", "processing", 30),  # a synonym: the same status
        writes.generation(queue={"position": 0, "message": "next"}),  # not a creation
    ):
        outcome, reads = harness.counted(handler, event)
        assert outcome.outcome == "cannot change the status; nothing read"
        assert reads == 0 and harness.counter.snapshot() == {}


def test_a_status_change_is_one_batched_read_and_the_four_outbox_documents(
    writes: Writes, harness: Harness
) -> None:
    handler = harness.handler()
    harness.send(handler, writes.generation())
    outcome, reads = harness.counted(handler, writes.job("preProcessing", "running"))
    assert outcome.outcome == f"recorded {PROCESSING_EVENT}"
    # The project is known to be audio now: restoredVideo is not read again.
    assert sorted(harness.counter.requested_documents()) == sorted(
        [f"apiProjects/{PROJECT_ID}", f"apiProjects/{PROJECT_ID}/generations/{GENERATION_ID}"]
        + JOBS
        + OUTBOX
    )
    assert reads == 8
    # A status change of a stage that leaves the overall status alone costs the same reads.
    outcome, reads = harness.counted(handler, writes.job("preProcessing", "complete", 100))
    assert (outcome.outcome, reads) == ("nothing new", 8)


def test_a_video_project_reads_its_third_stage(
    seed: Seeder, writes: Writes, harness: Harness
) -> None:
    seed.project(PROJECT_ID, "user-1", has_video=True)
    handler = harness.handler()
    harness.send(handler, writes.generation())
    seed.project(PROJECT_ID, "user-1", has_video=True, audioOriginalMp3Ready=True)
    harness.send(handler, writes.job("inference", "complete", 100))
    # Rule 6 makes preprocessing complete; restoredVideo still waits: processing.
    assert set(harness.outbox()) == {QUEUED_EVENT, PROCESSING_EVENT}
    harness.send(handler, writes.job("restoredVideo", "complete", 100))
    assert harness.event_doc(COMPLETED_EVENT)["payload"]["hasVideo"] is True


def test_a_generation_in_a_project_whose_mp3_is_ready_is_queued_until_its_own_job_runs(
    seed: Seeder, writes: Writes, harness: Harness
) -> None:
    # Rule 6 completes preprocessing for every generation of the project; a poll says
    # processing, but for events creating a generation is queuing it (contract §2).
    seed.project(PROJECT_ID, "user-1", audioOriginalMp3Ready=True)
    handler = harness.handler()
    assert harness.send(handler, writes.generation()).outcome == f"recorded {QUEUED_EVENT}"
    assert harness.event_doc(QUEUED_EVENT)["payload"]["status"] == "queued"
    # A job queued as pending is no news; its own job running is.
    assert harness.send(handler, writes.job("inference", "pending")).outcome != (
        f"recorded {PROCESSING_EVENT}"
    )
    assert harness.send(handler, writes.job("inference", "running", 5)).outcome == (
        f"recorded {PROCESSING_EVENT}"
    )
    assert set(harness.outbox()) == {QUEUED_EVENT, PROCESSING_EVENT}


def test_a_generation_created_after_its_stages_began_is_still_queued_first(
    seed: Seeder, writes: Writes, harness: Harness
) -> None:
    seed.project(PROJECT_ID, "user-1")
    writes.job("preProcessing", "running", 10)
    handler = harness.handler()
    assert harness.send(handler, writes.generation()).outcome == f"recorded {QUEUED_EVENT}"
    assert harness.send(handler, writes.job("preProcessing", "complete", 100)).outcome == (
        f"recorded {PROCESSING_EVENT}"
    )


def test_a_missing_project_or_generation_is_logged_and_acknowledged(
    writes: Writes, harness: Harness, event_logs: Records
) -> None:
    handler = harness.handler()
    event = writes.job("inference", "running")  # the generation was never created
    outcome = harness.send(handler, event)
    assert outcome.outcome == "generation document missing; acknowledged"
    assert harness.outbox() == {}
    assert [r.levelname for r in event_logs.records] == ["WARNING"]


def test_an_event_older_than_the_max_age_is_dropped_with_exactly_one_error_line(
    writes: Writes, harness: Harness, event_logs: Records
) -> None:
    handler = harness.handler(webhook_max_age_hours=24)
    headers, body = writes.generation()
    headers["ce-time"] = (datetime.now(UTC) - timedelta(hours=25)).isoformat()
    harness.counter.reset()
    outcome = harness.send(handler, (headers, body))
    assert outcome.outcome.startswith("given up")
    assert [r.levelname for r in event_logs.records] == ["ERROR"]
    assert headers["ce-id"] in event_logs.records[0].getMessage()
    assert "WEBHOOK_MAX_AGE_HOURS=24" in event_logs.records[0].getMessage()
    assert harness.outbox() == {} and harness.counter.snapshot() == {}
    # A day-old event is still handled.
    headers["ce-time"] = (datetime.now(UTC) - timedelta(hours=23)).isoformat()
    assert harness.send(handler, (headers, body)).outcome == f"recorded {QUEUED_EVENT}"


def test_a_generation_without_a_model_key_records_a_null_model(
    writes: Writes, harness: Harness
) -> None:
    harness.send(harness.handler(), writes.generation(modelKey=...))
    assert harness.event_doc(QUEUED_EVENT)["payload"]["modelKey"] is None


def test_a_malformed_model_key_records_a_null_model(writes: Writes, harness: Harness) -> None:
    harness.send(harness.handler(), writes.generation(modelKey={"name": "pro"}))
    assert harness.event_doc(QUEUED_EVENT)["payload"]["modelKey"] is None


def test_malformed_events_are_logged_once_and_acknowledged(
    writes: Writes, harness: Harness, event_logs: Records
) -> None:
    handler = harness.handler()
    path = f"apiProjects/{PROJECT_ID}/generations/{GENERATION_ID}"
    good_headers, good_body = written_event(TEST_PROJECT, path, None, {"generationId": "x"})
    outside = written_event(TEST_PROJECT, f"apiProjects/{PROJECT_ID}", None, {"userId": "u"})
    outbox_doc = written_event(TEST_PROJECT, f"{path}/events/{QUEUED_EVENT}", None, {"x": 1})
    cases = {
        "bad protobuf": (good_headers, b"\xff\xff\xff\xff"),
        "no document in the data": (good_headers, b""),
        "outside the patterns": outside,
        "the outbox itself": outbox_doc,
        "no document attribute": (
            {k: v for k, v in good_headers.items() if k not in ("ce-document", "ce-subject")},
            good_body,
        ),
    }
    for name, event in cases.items():
        event_logs.clear()
        harness.counter.reset()
        outcome = harness.send(handler, event)
        assert outcome.outcome.startswith("malformed event acknowledged"), name
        assert [r.levelname for r in event_logs.records] == ["WARNING"], name
        assert harness.counter.snapshot() == {}, name
    assert harness.outbox() == {}
