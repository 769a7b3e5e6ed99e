"""Shared fixtures: the real Firestore emulator, contract seeding, the function's clients."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from google.cloud import firestore

from diffio_progress import emulator
from diffio_progress.handler import reset_default_handler
from tests.seed import Seeder

ROOT = Path(__file__).resolve().parent.parent
TEST_PROJECT = "diffio-progress-test"


@pytest.fixture(scope="session")
def firestore_host() -> Iterator[str]:
    """``host:port`` of a Firestore emulator: the one in FIRESTORE_EMULATOR_HOST, or our own.

    Never skips: with no emulator installed the session fails with install help.
    """
    given = os.environ.get("FIRESTORE_EMULATOR_HOST")
    if given:
        if not emulator.is_ready(given, timeout=5):
            pytest.fail(f"FIRESTORE_EMULATOR_HOST={given} does not answer.", pytrace=False)
        yield given
        return
    try:
        process = emulator.FirestoreEmulator().start()
    except emulator.EmulatorNotFound as missing:
        pytest.fail(str(missing), pytrace=False)
    os.environ["FIRESTORE_EMULATOR_HOST"] = process.host_port
    try:
        yield process.host_port
    finally:
        process.stop()
        os.environ.pop("FIRESTORE_EMULATOR_HOST", None)


@pytest.fixture
def db(firestore_host: str, monkeypatch: pytest.MonkeyPatch) -> firestore.Client:
    """A Firestore client on an emptied emulator project; the function reads the same one."""
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_host)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", TEST_PROJECT)
    emulator.clear(firestore_host, TEST_PROJECT)
    return firestore.Client(project=TEST_PROJECT)


@pytest.fixture
def seed(db: firestore.Client) -> Seeder:
    return Seeder(db)


@pytest.fixture(scope="session")
def app():  # type: ignore[no-untyped-def]
    """The real entry point: main.py loaded by functions-framework."""
    import functions_framework

    return functions_framework.create_app(
        target="get_generation_progress", source=str(ROOT / "main.py")
    )


@pytest.fixture
def client(app, db: firestore.Client):  # type: ignore[no-untyped-def]
    """A test client of the function with a fresh handler (fresh caches, current env)."""
    reset_default_handler()
    yield app.test_client()
    reset_default_handler()


@pytest.fixture
def serve_function(
    firestore_host: str,
) -> Iterator[Callable[..., str]]:
    """Start ``functions-framework`` serving main.py over HTTP; returns its base URL.

    Extra environment variables may be passed; every server is stopped after the test.
    """
    servers: list[subprocess.Popen[bytes]] = []

    def start(**env: str) -> str:
        port = emulator.free_port()
        full_env = {
            **os.environ,
            "FIRESTORE_EMULATOR_HOST": firestore_host,
            "GOOGLE_CLOUD_PROJECT": TEST_PROJECT,
            **env,
        }
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "functions_framework",
                "--target=get_generation_progress",
                f"--source={ROOT / 'main.py'}",
                "--host=127.0.0.1",
                f"--port={port}",
            ],
            cwd=ROOT,
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        servers.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail("functions-framework exited during start-up")
            try:
                urllib.request.urlopen(urllib.request.Request(url, method="OPTIONS"), timeout=1)
                return url
            except OSError:
                time.sleep(0.1)
        pytest.fail("functions-framework did not start in time")

    yield start
    for process in servers:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
