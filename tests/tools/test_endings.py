"""Workers that die or exit without a result: every generation still ends, as the reaper says."""

from __future__ import annotations

import pytest
from google.cloud import firestore

from diffio_progress.bench import endings
from diffio_progress.core.job_updates import NO_RESULT
from diffio_progress.core.reaping import Summary
from diffio_progress.core.stages import COMPLETE, FAILED
from diffio_progress.functions.cloud_run import CloudRunExecutions, executions_client
from diffio_progress.functions.firestore import FirestoreConnection
from diffio_progress.functions.reaper.lookups import ReaperLookup
from diffio_progress.functions.reaper.store import ReaperStore
from diffio_progress.functions.reaper.sweep import Reaper
from diffio_progress.tools.cloud_run_standin import CloudRunStandIn
from diffio_progress.tools.executions import StandInExecutions
from diffio_progress.tools.simulator import SILENT, Failure, Pace, ensure_generation, simulate
from tests.project import TEST_PROJECT


def test_a_worker_that_exits_without_a_result_leaves_running_and_the_reaper_fails_it(
    db: firestore.Client,
) -> None:
    with CloudRunStandIn() as standin:
        ensure_generation(db, "proj-s", "gen-s", user_id="u", has_video=False)
        status = simulate(
            db,
            "proj-s",
            "gen-s",
            has_video=False,
            pace=Pace(step_seconds=0, steps=4, queued_seconds=0, queue_steps=0),
            failure=Failure("inference", silent=True),
            executions=StandInExecutions(standin.host_port, TEST_PROJECT),
        )
        assert status == SILENT
        ref = db.document("apiProjects", "proj-s", "generations", "gen-s", "jobs", "inference")
        left = ref.get().to_dict() or {}
        assert (left["status"], left["error"]) == ("running", None)

        lookup = ReaperLookup(
            CloudRunExecutions(
                deadline=2.0,
                cache_ttl=0,
                client_factory=lambda: executions_client(standin.host_port),
            )
        )
        store = ReaperStore(FirestoreConnection(5.0, project=TEST_PROJECT))
        assert Reaper(store, lookup, min_age_seconds=0, batch=500)() == Summary(1, 1, 0)
    reaped = ref.get().to_dict() or {}
    assert (reaped["status"], reaped["jobState"], reaped["error"]) == (
        "failed",
        "SUCCEEDED",
        NO_RESULT,
    )


def test_the_endings_benchmark_ends_every_generation_as_its_worker_was_drawn(
    firestore_host: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_host)
    planned = endings.plan(6, seed=6)
    # The draw holds each fate, so the test covers all three.
    assert {p.fate for p in planned} == {endings.FINISH, endings.KILL, endings.SILENT}

    seen = endings.run(planned, period=1.0, min_age=1.0, timeout=40, firestore_host=firestore_host)

    for item in planned:
        assert seen[item.generation].status == (COMPLETE if item.fate == endings.FINISH else FAILED)
    assert "| 6 | 1 | 2 | 3 | 3 | 0 | 6/6 |" in capsys.readouterr().out
