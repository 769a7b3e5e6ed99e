"""The command line: help with examples, simulate on the emulator, and one-line failures."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from typing import Any

import pytest
from google.cloud import firestore

from diffio_progress.tools.cli import main
from diffio_progress.tools.emulator import free_port
from diffio_progress.worker.stage_writer import StageWriter
from tests.project import ROOT

COMMANDS = ["run", "watch", "simulate", "create-key", "revoke-key", "fail-stage", "webhooks"]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "diffio_progress", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def without_firestore_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if k not in ("FIRESTORE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT")
    }


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    assert "example:\n  " in out
    assert f"-m diffio_progress {command}" in out.split("example:")[1]


def test_the_entry_point_lists_every_command() -> None:
    result = cli("--help")
    assert result.returncode == 0
    assert all(command in result.stdout for command in COMMANDS)


def test_a_stopped_emulator_is_one_clear_line_without_a_traceback() -> None:
    host = f"127.0.0.1:{free_port()}"
    env = {**without_firestore_env(), "FIRESTORE_EMULATOR_HOST": host}
    result = cli("create-key", "--user-id", "u", env=env)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert f"Firestore emulator at {host}" in result.stderr and "not running" in result.stderr


@pytest.mark.parametrize(
    "args", [["revoke-key", "--key-id", "key_1"], ["simulate", "--project-id", "p"]]
)
def test_every_firestore_command_checks_the_emulator_first(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    host = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", host)
    assert main(args) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and f"Firestore emulator at {host}" in captured.err


def test_no_firestore_configured_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST", raising=False)
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    assert main(["create-key", "--user-id", "u"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "FIRESTORE_EMULATOR_HOST" in err


def job(db: firestore.Client, project: str, generation: str, stage: str) -> dict[str, Any] | None:
    snapshot = db.document("apiProjects", project, "generations", generation, "jobs", stage).get()
    return snapshot.to_dict() if snapshot.exists else None


def test_simulate_drives_a_new_video_generation_to_complete(
    db: firestore.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["simulate", "gen-s", "--project-id", "proj-s", "--video", "--user-id", "user-9"]
        + ["--step-seconds", "0", "--steps", "3"]
    )

    assert code == 0
    out = capsys.readouterr().out
    assert "watch gen-s --project-id proj-s" in out
    assert "queue: position 0\nqueue: taken by a worker\npreProcessing: running" in out
    project = db.document("apiProjects", "proj-s").get().to_dict()
    assert project == {"userId": "user-9", "hasVideo": True, "audioOriginalMp3Ready": True}
    generation = db.document("apiProjects", "proj-s", "generations", "gen-s").get().to_dict()
    assert generation is not None
    assert (generation["generationId"], generation["apiProjectId"], generation["userId"]) == (
        "gen-s",
        "proj-s",
        "user-9",
    )
    # Queued, taken, transcribed: the generation document ends with no queue and a transcript.
    assert "queue" not in generation and "dequeuedAt" in generation
    assert generation["transcription"] == {"status": "available"}
    for stage in ("preProcessing", "inference", "restoredVideo"):
        doc = job(db, "proj-s", "gen-s", stage)
        assert doc is not None
        assert (doc["status"], doc["progress"], doc["jobState"]) == ("complete", 100, "SUCCEEDED")


def test_simulate_fails_the_chosen_stage_with_its_error(
    db: firestore.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    db.document("apiProjects", "proj-a").set({"userId": "user-1", "hasVideo": False})
    code = main(
        ["simulate", "gen-f", "--project-id", "proj-a", "--fail-stage", "inference"]
        + ["--error", "Model crashed", "--details", "segfault in decoder", "--step-seconds", "0"]
    )

    assert code == 0
    assert "inference: failed" in capsys.readouterr().out
    inference = job(db, "proj-a", "gen-f", "inference")
    assert inference is not None
    assert (inference["status"], inference["error"], inference["errorDetails"]) == (
        "failed",
        "Model crashed",
        "segfault in decoder",
    )
    assert 0 < inference["progress"] < 100
    # An audio project never gets a video stage.
    assert job(db, "proj-a", "gen-f", "restoredVideo") is None


def test_fail_stage_fails_a_stuck_stage_once_and_never_a_finished_one(
    db: firestore.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    StageWriter(db, "proj-h", "gen-h", "inference").start(job_id="exec-1")
    StageWriter(db, "proj-h", "gen-h", "preProcessing").complete()
    args = ["fail-stage", "gen-h", "--project-id", "proj-h", "--error", "Worker lost"]

    assert main([*args[:2], "inference", *args[2:], "--details", "by hand"]) == 0
    assert main([*args[:2], "inference", *args[2:]]) == 0  # again: nothing more written
    assert main([*args[:2], "preProcessing", *args[2:]]) == 0
    assert main([*args[:2], "restoredVideo", *args[2:]]) == 1  # no such stage: nothing made

    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        "proj-h/gen-h inference: failed",
        "proj-h/gen-h inference: unchanged: it had already finished",
        "proj-h/gen-h preProcessing: unchanged: it had already finished",
    ]
    assert "No stage proj-h/gen-h restoredVideo" in captured.err
    inference = job(db, "proj-h", "gen-h", "inference")
    assert inference is not None
    assert (inference["status"], inference["error"], inference["errorDetails"]) == (
        "failed",
        "Worker lost",
        "by hand",
    )
    assert job(db, "proj-h", "gen-h", "preProcessing")["status"] == "complete"  # type: ignore[index]
    assert job(db, "proj-h", "gen-h", "restoredVideo") is None


def test_simulate_refuses_a_video_failure_on_an_audio_project(
    db: firestore.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    db.document("apiProjects", "proj-a").set({"userId": "user-1", "hasVideo": False})
    code = main(["simulate", "--project-id", "proj-a", "--fail-stage", "restoredVideo"])
    assert code == 1
    assert "no video" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--port", "--firestore-port"])
def test_run_reports_a_busy_port_and_suggests_another(flag: str) -> None:
    ports = {"--port": free_port(), "--firestore-port": free_port()}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", ports[flag]))
        busy.listen()
        result = cli(
            "run",
            "--port",
            str(ports["--port"]),
            "--firestore-port",
            str(ports["--firestore-port"]),
            env=without_firestore_env(),
        )

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert f"Port {ports[flag]}" in result.stderr and "busy" in result.stderr
    suggested = int(result.stderr.split(f"run {flag} ")[1].split()[0])
    assert suggested != ports[flag]


def test_run_with_a_dead_given_emulator_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    host = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", host)
    assert main(["run", "--port", str(free_port())]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and f"FIRESTORE_EMULATOR_HOST={host}" in captured.err
