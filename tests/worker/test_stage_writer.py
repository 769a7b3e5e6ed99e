"""The worker-side writer on the emulator: the §4 document, monotonic progress, terminal safety."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.cloud import firestore

from diffio_progress.core.job_updates import JOB_FIELDS
from diffio_progress.core.stages import LiveExecution
from diffio_progress.worker.stage_writer import StageWriter
from tests import spec_example
from tests.project import TEST_PROJECT
from tests.races import race
from tests.seed import Seeder

PROJECT, GENERATION = "proj-1", "gen-1"
JOB_PATH = ("apiProjects", PROJECT, "generations", GENERATION, "jobs", "inference")


def writer(db: firestore.Client, stage: str = "inference", **kwargs: Any) -> StageWriter:
    return StageWriter(db, PROJECT, GENERATION, stage, **kwargs)


def stored(db: firestore.Client, stage: str = "inference") -> dict[str, Any]:
    snapshot = db.document("apiProjects", PROJECT, "generations", GENERATION, "jobs", stage).get()
    assert snapshot.exists
    return snapshot.to_dict() or {}


def test_start_writes_exactly_the_contract_job_document(db: firestore.Client) -> None:
    name = "projects/p/locations/us-central1/jobs/inference/executions/inference-abc"
    before = datetime.now(UTC)

    assert writer(db).start("inference-abc", execution_name=name, message="Loading model")

    doc = stored(db)
    assert set(doc) == {*JOB_FIELDS, "updatedAt"}
    assert {k: v for k, v in doc.items() if k != "updatedAt"} == {
        "jobId": "inference-abc",
        "jobState": "RUNNING",
        "status": "running",
        "progress": 0,
        "statusMessage": "Loading model",
        "error": None,
        "errorDetails": None,
        "executionName": name,
    }
    # A server timestamp: the emulator's clock, not a value the worker sent.
    assert isinstance(doc["updatedAt"], datetime)
    assert (
        before - timedelta(seconds=30)
        < doc["updatedAt"]
        < datetime.now(UTC) + timedelta(seconds=30)
    )


def test_progress_never_moves_backwards(db: firestore.Client) -> None:
    w = writer(db)
    w.start()
    assert w.progress(60, "Processing audio")

    assert w.progress(30, "stale") is False

    doc = stored(db)
    assert (doc["progress"], doc["statusMessage"]) == (60, "Processing audio")
    assert w.progress(60, "Still processing")
    assert stored(db)["statusMessage"] == "Still processing"


@pytest.mark.parametrize("finish", ["complete", "fail"])
def test_a_finished_stage_is_never_overwritten(db: firestore.Client, finish: str) -> None:
    w = writer(db)
    w.start()
    w.progress(40)
    if finish == "complete":
        assert w.complete()
    else:
        assert w.fail("Inference failed", "CUDA out of memory")
    final = stored(db)

    assert w.progress(90, "late") is False
    assert w.start(message="retry") is False
    assert w.complete() is False
    assert w.fail("late failure") is False
    assert stored(db) == final


def test_complete_and_fail_write_their_terminal_fields(db: firestore.Client) -> None:
    pre, inference = writer(db, "preProcessing"), writer(db, "inference")
    pre.start()
    pre.complete()
    inference.start("job-inf")
    inference.progress(62, "Processing audio")
    inference.fail("Inference failed", "Worker exited with code 137")

    assert {k: stored(db, "preProcessing")[k] for k in ("status", "progress", "jobState")} == {
        "status": "complete",
        "progress": 100,
        "jobState": "SUCCEEDED",
    }
    failed = stored(db)
    assert {k: failed[k] for k in ("status", "progress", "jobState", "error", "errorDetails")} == {
        "status": "failed",
        "progress": 62,
        "jobState": "FAILED",
        "error": "Inference failed",
        "errorDetails": "Worker exited with code 137",
    }
    assert failed["jobId"] == "job-inf"


def test_a_late_queued_start_does_not_move_a_running_stage_back(db: firestore.Client) -> None:
    w = writer(db)
    w.start(message="Loading model")
    w.progress(20)

    w.start(job_state="PENDING", message="Queued")

    doc = stored(db)
    assert (doc["status"], doc["jobState"], doc["progress"]) == ("running", "RUNNING", 20)
    assert doc["statusMessage"] == "Loading model"


def test_fields_other_services_keep_on_the_job_document_survive(db: firestore.Client) -> None:
    db.document("apiProjects", PROJECT, "generations", GENERATION, "jobs", "inference").set(
        {"status": "pending", "progress": 0, "gpu": "l4"}
    )
    writer(db).progress(10)
    assert stored(db)["gpu"] == "l4"


@pytest.mark.parametrize("bad", [-1, 100.5, float("nan"), float("inf")])
def test_progress_outside_0_to_100_is_a_worker_bug(db: firestore.Client, bad: float) -> None:
    with pytest.raises(ValueError):
        writer(db).progress(bad)


def test_unknown_stage_is_refused(db: firestore.Client) -> None:
    with pytest.raises(ValueError, match="stage must be one of"):
        writer(db, "upload")


def test_two_writers_racing_on_one_stage(firestore_host: str, db: firestore.Client) -> None:
    """A worker reports 10..100 and completes while a duplicate keeps sending stale updates."""
    # Unpaced: every update reaches Firestore's transaction, which is what races here.
    fast = writer(firestore.Client(project=TEST_PROJECT), job_id="job-a", min_interval_seconds=0)
    late = writer(firestore.Client(project=TEST_PROJECT), job_id="job-b", min_interval_seconds=0)
    fast.start()
    completed = threading.Event()
    seen: list[tuple[str, float]] = []
    late_after_complete: list[bool] = []  # whether each late write after complete() applied

    def run_fast() -> None:
        for step in range(1, 11):
            fast.progress(step * 10, f"step {step}")
        assert fast.complete()
        completed.set()

    def run_late() -> None:
        # Hammers the stage before, during and after the complete(): the moment of the race.
        percent = 99.0
        while len(late_after_complete) < 5:
            was_completed = completed.is_set()
            applied = late.progress(percent, "late")
            if was_completed:
                late_after_complete.append(applied)
            percent = max(percent - 1, 0)

    reader = firestore.Client(project=TEST_PROJECT).document(*JOB_PATH)
    reader.get()  # connected before the race starts

    def observe() -> None:
        doc = reader.get().to_dict() or {}
        seen.append((doc["status"], doc["progress"]))

    race(run_fast, run_late, observe=observe)
    final = stored(db)
    assert (final["status"], final["progress"], final["jobState"]) == ("complete", 100, "SUCCEEDED")
    assert final["jobId"] == "job-a"
    progresses = [progress for _, progress in seen]
    assert progresses == sorted(progresses), "progress moved backwards"
    statuses = [status for status, _ in seen]
    assert "complete" in statuses
    assert set(statuses[statuses.index("complete") :]) == {"complete"}
    # Once the fast writer's complete() returned, every late write was refused.
    assert late_after_complete == [False] * 5


def test_execution_ended_fails_a_running_stage_with_the_live_state(db: firestore.Client) -> None:
    name = "projects/p/locations/us-central1/jobs/inference/executions/inference-abc"
    w = writer(db, execution_name=name)
    w.start("inference-abc")
    w.progress(62, "Processing audio")

    assert w.execution_ended(name, LiveExecution("CANCELLED", "The execution was cancelled"))

    doc = stored(db)
    assert {k: doc[k] for k in ("status", "progress", "jobState", "error", "errorDetails")} == {
        "status": "failed",
        "progress": 62,
        "jobState": "CANCELLED",
        "error": "Cloud Run execution cancelled",
        "errorDetails": "The execution was cancelled",
    }
    assert doc["statusMessage"] is None


def test_execution_ended_never_overwrites_a_completed_stage(db: firestore.Client) -> None:
    name = "projects/p/locations/us-central1/jobs/inference/executions/inference-abc"
    w = writer(db, execution_name=name)
    w.start()
    assert w.complete()
    final = stored(db)

    assert w.execution_ended(name, LiveExecution("FAILED", "exited with code 137")) is False
    assert stored(db) == final


def test_from_environment_names_the_cloud_run_execution(db: firestore.Client) -> None:
    env = {
        "CLOUD_RUN_JOB": "inference",
        "CLOUD_RUN_EXECUTION": "inference-x7k2p",
        "GOOGLE_CLOUD_PROJECT": "my-project",
        "CLOUD_RUN_REGION": "europe-west1",
    }
    w = StageWriter.from_environment(PROJECT, GENERATION, "inference", db=db, environ=env)
    w.start(message="Loading model")

    doc = stored(db)
    assert doc["jobId"] == "inference-x7k2p"
    assert doc["executionName"] == (
        "projects/my-project/locations/europe-west1/jobs/inference/executions/inference-x7k2p"
    )


def test_from_environment_asks_the_metadata_server_for_what_is_unset(
    db: firestore.Client,
) -> None:
    env = {"CLOUD_RUN_JOB": "pre", "CLOUD_RUN_EXECUTION": "pre-1"}
    answers = {"project/project-id": "proj-x", "instance/region": "projects/123/regions/asia-east1"}
    w = StageWriter.from_environment(
        PROJECT, GENERATION, "preProcessing", db=db, environ=env, metadata=answers.get
    )
    assert w.execution_name == "projects/proj-x/locations/asia-east1/jobs/pre/executions/pre-1"


def test_from_environment_outside_cloud_run_leaves_execution_empty(db: firestore.Client) -> None:
    w = StageWriter.from_environment(
        PROJECT, GENERATION, "inference", db=db, environ={}, metadata=lambda path: None
    )
    assert (w.job_id, w.execution_name) == (None, None)


def test_the_function_reports_what_the_writer_wrote(seed: Seeder, client: Any) -> None:
    key = seed.world(PROJECT, GENERATION)
    db = seed.db
    writer(db, "preProcessing").complete()
    inference = writer(db)
    inference.start("job-cloud-run-gpu")
    inference.progress(45, "Processing audio")

    response = client.post(
        "/v1/get_generation_progress",
        json={"generationId": GENERATION, "apiProjectId": PROJECT},
        headers={"Authorization": f"Bearer {key}"},
    )

    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "processing"
    assert body["inference"] == spec_example.RESPONSE["inference"]
