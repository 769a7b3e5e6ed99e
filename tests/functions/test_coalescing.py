"""Identical polls in flight share one read (coalescing.py): 50 at once cost one batch."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from google.cloud import firestore

from diffio_progress.functions.config import Settings
from diffio_progress.functions.progress.coalescing import Coalescer
from diffio_progress.functions.store import Documents, FirestoreStore
from tests.counted_handler import BATCH, counted_handler
from tests.project import TEST_PROJECT
from tests.seed import Seeder, key_hash

POLLS = 50


class HeldStore(FirestoreStore):
    """Holds each batched read until ``release`` is set, so polls pile up behind it."""

    release = threading.Event()

    def get_documents(self, doc_paths: Any) -> Documents:
        assert self.release.wait(timeout=30), "the test never released the read"
        return super().get_documents(doc_paths)


@pytest.fixture(autouse=True)
def held() -> Any:
    HeldStore.release = threading.Event()
    yield
    HeldStore.release.set()


def poll_together(key: str, body: dict[str, str]) -> tuple[list[Any], dict[str, int]]:
    """``POLLS`` identical polls at once; the read is released once all of them wait on it."""
    counted = counted_handler(
        Settings(project=TEST_PROJECT, key_rate_limit_per_second=0), store_class=HeldStore
    )
    flight = (key_hash(key), body["generationId"], body.get("apiProjectId"))

    def post(_: int) -> Any:
        response = counted.app.test_client().post("/", json=body, headers={"X-Api-Key": key})
        return response.status_code, response.get_json()

    with ThreadPoolExecutor(POLLS) as pool:
        answers = pool.map(post, range(POLLS))
        deadline = time.monotonic() + 30
        while counted.handler.flights.followers(flight) < POLLS - 1:
            assert time.monotonic() < deadline, "the polls never all joined one read"
            time.sleep(0.01)
        HeldStore.release.set()
        return list(answers), counted.counter.snapshot()


def test_fifty_identical_polls_cost_one_batch_and_get_the_same_answer(
    seed: Seeder, db: firestore.Client
) -> None:
    key = seed.world(has_video=True)
    seed.job("proj-1", "gen-1", "inference", status="running", progress=30)
    answers, counts = poll_together(key, {"generationId": "gen-1", "apiProjectId": "proj-1"})
    assert counts[BATCH] == 1
    assert {status for status, _ in answers} == {200}
    assert all(body == answers[0][1] for _, body in answers)
    assert answers[0][1]["inference"]["progress"] == 30


def test_followers_get_the_leaders_error(seed: Seeder, db: firestore.Client) -> None:
    key = seed.api_key("user-1")
    answers, counts = poll_together(key, {"generationId": "gen-x", "apiProjectId": "proj-x"})
    assert counts[BATCH] == 1
    assert (
        answers
        == [(404, {"error": "Generation not found", "code": "generation_not_found"})] * POLLS
    )


def test_polls_that_differ_in_key_or_ids_do_not_share(seed: Seeder, db: firestore.Client) -> None:
    flights: Coalescer[str, int] = Coalescer()
    inside = threading.Barrier(2, timeout=10)

    def work() -> int:
        inside.wait()  # both are running at once: neither joined the other
        return 1

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda key: flights.run(key, work), ["a", "b"]))
    assert results == [1, 1]


def test_a_poll_after_the_read_finished_reads_afresh() -> None:
    flights: Coalescer[str, int] = Coalescer()
    runs = iter(range(10))
    assert flights.run("k", lambda: next(runs)) == 0
    assert flights.run("k", lambda: next(runs)) == 1  # nothing is cached
