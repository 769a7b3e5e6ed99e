"""`simulate --kill-stage` and `--exit-silently`: the worker stops without a word, only its
execution tells (FAILED, or SUCCEEDED without a result), and the reaper fails the stage."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from google.cloud import firestore

from diffio_progress.core.reaping import Summary
from diffio_progress.functions.cloud_run import (
    CloudRunExecutions,
    executions_client,
    live_execution,
)
from diffio_progress.functions.firestore import FirestoreConnection
from diffio_progress.functions.reaper.lookups import ReaperLookup
from diffio_progress.functions.reaper.store import ReaperStore
from diffio_progress.functions.reaper.sweep import Reaper
from diffio_progress.tools.cli import main
from diffio_progress.tools.cloud_run_standin import CloudRunStandIn
from diffio_progress.tools.emulator import free_port
from tests.project import TEST_PROJECT


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[CloudRunStandIn]:
    with CloudRunStandIn() as server:
        monkeypatch.setenv("CLOUD_RUN_EMULATOR_HOST", server.host_port)
        yield server


def stage(db: firestore.Client, generation: str, name: str) -> dict[str, Any]:
    snapshot = db.document("apiProjects", "proj-k", "generations", generation, "jobs", name).get()
    assert snapshot.exists
    return snapshot.to_dict() or {}


def live_state(standin: CloudRunStandIn, execution: str) -> str:
    client = executions_client(standin.host_port)
    return live_execution(client.get_execution(name=execution)).job_state


def reaper(standin: CloudRunStandIn) -> Reaper:
    """The reaper as deployed, asking the stand-in, for stages of any age."""
    lookup = ReaperLookup(
        CloudRunExecutions(
            deadline=2.0, cache_ttl=0, client_factory=lambda: executions_client(standin.host_port)
        )
    )
    store = ReaperStore(FirestoreConnection(5.0, project=TEST_PROJECT))
    return Reaper(store, lookup, min_age_seconds=0, batch=500)


def simulate(*args: str) -> int:
    return main(["simulate", *args, "--project-id", "proj-k", "--step-seconds", "0"])


def test_a_killed_worker_writes_nothing_more_and_the_reaper_fails_its_stage(
    db: firestore.Client, standin: CloudRunStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    assert simulate("gen-k", "--kill-stage", "inference") == 0

    out = capsys.readouterr().out
    assert "inference: killed" in out and out.endswith("gen-k: killed\n")
    inference = stage(db, "gen-k", "inference")
    # The worker wrote no failure: the stored stage still says running.
    assert (inference["status"], inference["error"]) == ("running", None)
    assert 0 < inference["progress"] < 100
    assert live_state(standin, inference["executionName"]) == "FAILED"
    assert live_state(standin, stage(db, "gen-k", "preProcessing")["executionName"]) == "SUCCEEDED"

    assert reaper(standin)() == Summary(checked=1, failed=1)
    reaped = stage(db, "gen-k", "inference")
    assert (reaped["status"], reaped["jobState"], reaped["error"]) == (
        "failed",
        "FAILED",
        "Cloud Run execution failed",
    )
    assert "exited with code 137" in reaped["errorDetails"]


def test_a_worker_that_exits_silently_is_failed_by_the_reaper_as_without_a_result(
    db: firestore.Client, standin: CloudRunStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    assert simulate("gen-s", "--exit-silently", "inference") == 0

    out = capsys.readouterr().out
    assert "inference: exited without a result" in out
    assert out.endswith("gen-s: exited without a result\n")
    inference = stage(db, "gen-s", "inference")
    assert (inference["status"], inference["error"]) == ("running", None)
    assert live_state(standin, inference["executionName"]) == "SUCCEEDED"

    assert reaper(standin)() == Summary(checked=1, failed=1)
    reaped = stage(db, "gen-s", "inference")
    assert (reaped["status"], reaped["jobState"], reaped["error"]) == (
        "failed",
        "SUCCEEDED",
        "Worker exited without reporting a result",
    )


def test_with_the_stand_in_every_stage_runs_as_an_execution_it_knows(
    db: firestore.Client, standin: CloudRunStandIn
) -> None:
    assert simulate("gen-e", "--video", "--steps", "2") == 0

    for name in ("preProcessing", "inference", "restoredVideo"):
        document = stage(db, "gen-e", name)
        execution = document["executionName"]
        assert live_state(standin, execution) == "SUCCEEDED"
        # As on Cloud Run: the job id is the execution's id.
        assert document["jobId"] == execution.rsplit("/", 1)[1]


@pytest.mark.parametrize("flag", ["--kill-stage", "--exit-silently"])
def test_without_the_stand_in_it_is_one_clear_line(
    db: firestore.Client,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flag: str,
) -> None:
    monkeypatch.delenv("CLOUD_RUN_EMULATOR_HOST", raising=False)
    assert simulate(flag, "inference") == 1
    err = capsys.readouterr().err
    assert f"{flag} needs the Cloud Run stand-in" in err
    assert "set CLOUD_RUN_EMULATOR_HOST as `run` prints it" in err


def test_a_stand_in_that_does_not_answer_is_one_clear_line(
    db: firestore.Client, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    host_port = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("CLOUD_RUN_EMULATOR_HOST", host_port)
    assert simulate("--kill-stage", "inference") == 1
    err = capsys.readouterr().err
    assert f"The Cloud Run stand-in at {host_port} does not answer" in err
    assert "Traceback" not in err


def test_kill_and_fail_cannot_be_asked_together(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        simulate("--kill-stage", "inference", "--fail-stage", "inference")
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
