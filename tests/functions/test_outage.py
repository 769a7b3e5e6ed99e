"""Firestore outages: a bounded 503 with Retry-After, then recovery without a restart."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from google.cloud import firestore

from diffio_progress.tools import emulator
from tests.outages import BOUND_SECONDS, frozen, stop
from tests.seed import Seeder, new_key

UNAVAILABLE = {"error": "Service temporarily unavailable; retry shortly", "code": "unavailable"}


def seed_world(host_port: str, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A key, a project and a generation in the emulator at ``host_port``."""
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", host_port)
    seed = Seeder(firestore.Client(project="diffio-progress-outage"))
    seed.api_key("user-1", key=key)
    seed.project("proj-1", "user-1")
    seed.generation("proj-1", "gen-1", "user-1")
    seed.job("proj-1", "gen-1", "inference", status="running", progress=40)


def poll_both_ways(url: str, key: str) -> list[tuple[httpx.Response, float]]:
    """One poll with apiProjectId (batched read) and one without (query); with latencies."""
    results = []
    for body in ({"generationId": "gen-1", "apiProjectId": "proj-1"}, {"generationId": "gen-1"}):
        started = time.monotonic()
        response = httpx.post(url, json=body, headers={"X-Api-Key": key}, timeout=60)
        results.append((response, time.monotonic() - started))
    return results


def assert_unavailable(results: list[tuple[httpx.Response, float]]) -> None:
    for response, elapsed in results:
        assert response.status_code == 503, response.text
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert int(response.headers["Retry-After"]) >= 1
        assert response.json() == UNAVAILABLE
        assert elapsed < BOUND_SECONDS


def assert_served(results: list[tuple[httpx.Response, float]]) -> None:
    for response, _ in results:
        assert response.status_code == 200, response.text
        assert response.json()["inference"]["progress"] == 40


@pytest.mark.slow
def test_firestore_outages_are_a_bounded_503_and_the_function_recovers_without_restart(
    own_emulator: emulator.FirestoreEmulator,
    serve_function: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = new_key()
    own_emulator.start()
    seed_world(own_emulator.host_port, key, monkeypatch)
    url = serve_function(
        FIRESTORE_EMULATOR_HOST=own_emulator.host_port,
        GOOGLE_CLOUD_PROJECT="diffio-progress-outage",
        FIRESTORE_TIMEOUT_SECONDS="3",
    )
    assert_served(poll_both_ways(url, key))

    # Hung: only the function's own deadline can end a call.
    with frozen(own_emulator):
        assert_unavailable(poll_both_ways(url, key))
    assert_served(poll_both_ways(url, key))

    # Gone: stopped mid-test, every poll is refused until it is back.
    stop(own_emulator)
    assert_unavailable(poll_both_ways(url, key))

    # Back on the same port, as a fresh emulator (it keeps no data, so seed
    # again): the very next polls succeed, with the same function process.
    own_emulator.start()
    seed_world(own_emulator.host_port, key, monkeypatch)
    assert_served(poll_both_ways(url, key))
