"""Finding the Firestore emulator: without one, the suite fails loudly with install help."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from diffio_progress.tools import emulator
from diffio_progress.tools.processes import group_members
from tests.project import ROOT


def test_no_emulator_anywhere_raises_with_install_instructions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(emulator.shutil, "which", lambda name: None)
    monkeypatch.setattr(emulator, "_SDK_ROOTS", ())
    with pytest.raises(emulator.EmulatorNotFound) as missing:
        emulator.emulator_command("127.0.0.1", 8181)
    text = str(missing.value)
    assert "gcloud components install cloud-firestore-emulator" in text
    assert "firebase-tools" in text
    assert "FIRESTORE_EMULATOR_HOST" in text


def test_a_suite_without_an_emulator_fails_and_never_skips() -> None:
    # Only the virtualenv's own bin on PATH: no java, no gcloud, no firebase.
    env = {k: v for k, v in os.environ.items() if k != "FIRESTORE_EMULATOR_HOST"}
    env["PATH"] = str(Path(sys.executable).parent)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
        + ["tests/functions/test_endpoint.py::test_the_seed_example_round_trips_exactly"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "emulator" in result.stdout and "install" in result.stdout, result.stdout[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert "skipped" not in summary and "passed" not in summary, summary


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, emulator.JVM_OPTIONS),
        ({"JAVA_TOOL_OPTIONS": "-Xmx1g"}, f"-Xmx1g {emulator.JVM_OPTIONS}"),
    ],
)
def test_the_emulators_jvm_is_lean_and_keeps_the_users_own_options(
    given: dict[str, str], expected: str
) -> None:
    env = emulator.jvm_environment({"PATH": "/usr/bin", **given})
    assert env["JAVA_TOOL_OPTIONS"] == expected
    assert env["PATH"] == "/usr/bin"


def test_a_started_emulators_jvm_runs_with_those_options() -> None:
    with emulator.FirestoreEmulator() as started:
        assert started.process is not None
        members = group_members(started.process.pid)
        java = [pid for pid, (command, _) in members.items() if command == "java"]
        assert len(java) == 1, members
        environ = Path(f"/proc/{java[0]}/environ").read_text(errors="replace").split("\0")
        assert any(
            line.startswith("JAVA_TOOL_OPTIONS=") and line.endswith(emulator.JVM_OPTIONS)
            for line in environ
        )
