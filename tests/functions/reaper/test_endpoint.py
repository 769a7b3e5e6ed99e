"""`reap_stalled_jobs` through main.py and functions-framework: the answer, errors, its log line."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from diffio_progress.functions.logs import LOGGER_NAME
from diffio_progress.functions.reaper.handler import reset_default_reaper_handler
from diffio_progress.tools import cloud_run_standin as replies
from diffio_progress.tools import emulator
from diffio_progress.tools.cloud_run_standin import CloudRunStandIn
from tests.functions.reaper.stages import Stages
from tests.log_records import JsonLines, kept
from tests.project import ROOT


@pytest.fixture(scope="module")
def app():  # type: ignore[no-untyped-def]
    import functions_framework

    return functions_framework.create_app(target="reap_stalled_jobs", source=str(ROOT / "main.py"))


@pytest.fixture
def reaper_client(app, db: Any, standin: CloudRunStandIn, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A client of the deployed entry point, built afresh from this test's environment."""
    monkeypatch.setenv("CLOUD_RUN_EMULATOR_HOST", standin.host_port)
    reset_default_reaper_handler()
    yield app.test_client()
    reset_default_reaper_handler()


@pytest.fixture
def lines() -> Iterator[JsonLines]:
    with kept(JsonLines(), LOGGER_NAME) as handler:
        yield handler


def test_a_post_reaps_and_answers_the_summary(
    reaper_client: Any, stages: Stages, lines: JsonLines
) -> None:
    dead = stages.add(replies.failed)
    stages.add(replies.running)
    stages.add(None)  # unknown to Cloud Run

    response = reaper_client.post("/", headers={"User-Agent": "Google-Cloud-Scheduler"})

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.get_json() == {"checked": 3, "failed": 1, "lookupErrors": 1}
    assert stages.read(dead)["status"] == "failed"
    [request] = lines.requests()
    assert request["message"] == "POST / 200"
    assert (request["checked"], request["failed"], request["lookupErrors"]) == (3, 1, 1)
    assert request["httpRequest"]["userAgent"] == "Google-Cloud-Scheduler"


def test_reaper_batch_bounds_each_call(
    reaper_client: Any, stages: Stages, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REAPER_BATCH", "2")
    reset_default_reaper_handler()
    dead = [stages.add(replies.failed) for _ in range(3)]

    answers = [reaper_client.post("/").get_json() for _ in range(2)]

    assert answers == [
        {"checked": 2, "failed": 2, "lookupErrors": 0},
        {"checked": 1, "failed": 1, "lookupErrors": 0},
    ]
    assert all(stages.read(p)["status"] == "failed" for p in dead)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "OPTIONS"])
def test_any_method_but_post_is_a_405_and_reaps_nothing(
    reaper_client: Any, stages: Stages, standin: CloudRunStandIn, method: str
) -> None:
    dead = stages.add(replies.failed)

    response = reaper_client.open("/", method=method)

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.get_json() == {
        "error": "Method not allowed; use POST",
        "code": "method_not_allowed",
    }
    assert stages.read(dead)["status"] == "running"
    assert standin.total_requests() == 0


def test_firestore_unreachable_is_a_503_with_retry_after(
    reaper_client: Any, monkeypatch: pytest.MonkeyPatch, lines: JsonLines
) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{emulator.free_port()}")
    monkeypatch.setenv("FIRESTORE_TIMEOUT_SECONDS", "1")
    reset_default_reaper_handler()

    response = reaper_client.post("/")

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.get_json() == {
        "error": "Service temporarily unavailable; retry shortly",
        "code": "unavailable",
    }
    [request] = lines.requests()
    assert (request["severity"], request["code"]) == ("ERROR", "unavailable")
