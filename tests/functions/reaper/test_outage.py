"""The served reaper when Firestore is hung or gone: a bounded JSON 503, then it reaps."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from google.cloud import firestore

from diffio_progress.core import paths
from diffio_progress.functions.firestore import FirestoreConnection
from diffio_progress.functions.reaper.store import ReaperStore
from diffio_progress.tools import cloud_run_standin as replies
from diffio_progress.tools import emulator
from diffio_progress.tools.cloud_run_standin import CloudRunStandIn
from tests import spec_example
from tests.outages import BOUND_SECONDS, frozen, stop
from tests.project import TEST_PROJECT

UNAVAILABLE = {"error": "Service temporarily unavailable; retry shortly", "code": "unavailable"}


def dead_stage(host_port: str, standin: CloudRunStandIn, monkeypatch: pytest.MonkeyPatch) -> str:
    """A stage left running 5 minutes ago by an execution that failed; returns its path."""
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", host_port)
    generation = f"gen-{uuid.uuid4().hex[:10]}"
    name = replies.execution_name(generation)
    standin.script(name, replies.failed(name))
    path = paths.job("proj-1", generation, "inference")
    document = {
        **spec_example.RESPONSE["inference"],
        "executionName": name,
        "updatedAt": datetime.now(UTC) - timedelta(minutes=5),
    }
    firestore.Client(project=TEST_PROJECT).document(*path).set(document)
    return "/".join(path)


def warm_up(host_port: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reaper's reads once, patiently: a just-started emulator answers its first slowly."""
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", host_port)
    store = ReaperStore(FirestoreConnection(60.0, project=TEST_PROJECT))
    store.read_cursor()
    store.stale_jobs(["running"], datetime.now(UTC), None, 1)


def status_of(path: str) -> str:
    snapshot = firestore.Client(project=TEST_PROJECT).document(path).get()
    return str((snapshot.to_dict() or {})["status"])


def reap(url: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.post(url, timeout=120)
    return response, time.monotonic() - started


def assert_unavailable(answer: tuple[httpx.Response, float]) -> None:
    response, elapsed = answer
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json() == UNAVAILABLE  # the whole body: no stack, nothing internal
    assert elapsed < BOUND_SECONDS


@pytest.mark.slow
def test_an_outage_is_a_json_503_and_the_next_call_reaps_without_a_restart(
    own_emulator: emulator.FirestoreEmulator,
    serve_function: Callable[..., str],
    server_log_dir: Path,
    standin: CloudRunStandIn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    own_emulator.start()
    warm_up(own_emulator.host_port, monkeypatch)
    url = serve_function(
        target="reap_stalled_jobs",
        FIRESTORE_EMULATOR_HOST=own_emulator.host_port,
        FIRESTORE_TIMEOUT_SECONDS="3",
        CLOUD_RUN_EMULATOR_HOST=standin.host_port,
    )
    assert reap(url)[0].json() == {"checked": 0, "failed": 0, "lookupErrors": 0}

    # Hung: the stage is left as it was, and the next call reaps it.
    stage = dead_stage(own_emulator.host_port, standin, monkeypatch)
    with frozen(own_emulator):
        assert_unavailable(reap(url))
    assert status_of(stage) == "running"
    assert reap(url)[0].json() == {"checked": 1, "failed": 1, "lookupErrors": 0}
    assert status_of(stage) == "failed"

    # Gone, then back on the same port as a fresh emulator: the same process reaps.
    stop(own_emulator)
    assert_unavailable(reap(url))
    own_emulator.start()
    warm_up(own_emulator.host_port, monkeypatch)
    stage = dead_stage(own_emulator.host_port, standin, monkeypatch)
    assert reap(url)[0].json() == {"checked": 1, "failed": 1, "lookupErrors": 0}
    assert status_of(stage) == "failed"

    port = url.rsplit(":", 1)[1]
    assert "Traceback" not in (server_log_dir / f"{port}.log").read_text()
