"""Firestore round trips and document reads per poll, counted on the wire (gRPC interceptor)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import functions_framework
import pytest
from google.cloud import firestore

from diffio_progress.bench.rpc_count import COUNTS_PATH, diff
from diffio_progress.core import paths
from diffio_progress.functions.config import Settings
from diffio_progress.functions.store import FirestoreStore, FoundGeneration
from tests.counted_handler import BATCH, QUERY, Counted, counted_handler
from tests.project import ROOT, TEST_PROJECT
from tests.seed import Seeder, key_hash


@pytest.fixture
def counted(db: firestore.Client) -> Counted:
    # No key cache here: every poll's batch includes the key (tests/test_key_cache.py).
    return counted_handler(Settings(project=TEST_PROJECT, api_key_cache_ttl=0))


def _job_docs(requested: Sequence[str], stage: str) -> list[str]:
    return [name for name in requested if name.endswith(f"/jobs/{stage}")]


def test_poll_with_project_id_is_one_batched_read_of_every_needed_document(
    seed: Seeder, counted: Counted
) -> None:
    key = seed.world("proj-v", "gen-v", has_video=True)
    seed.job("proj-v", "gen-v", "inference", status="running", progress=40)

    for _ in range(3):
        poll = counted.poll(key, "gen-v", "proj-v")
        assert poll.status == 200
        assert poll.body["inference"]["progress"] == 40
        assert poll.counts == {BATCH: 1, "found": 4, "missing": 2}
        assert sorted(poll.requested) == sorted(
            [
                f"apiKeys/{key_hash(key)}",
                "apiProjects/proj-v",
                "apiProjects/proj-v/generations/gen-v",
                "apiProjects/proj-v/generations/gen-v/jobs/preProcessing",
                "apiProjects/proj-v/generations/gen-v/jobs/inference",
                "apiProjects/proj-v/generations/gen-v/jobs/restoredVideo",
            ]
        )
        assert poll.reads == 6


def test_audio_project_stops_reading_the_restored_video_job_after_the_first_poll(
    seed: Seeder, counted: Counted
) -> None:
    key = seed.world("proj-a", "gen-a", has_video=False)
    seed.job("proj-a", "gen-a", "preProcessing", status="complete")
    # A stray restoredVideo document must not be read, let alone reported.
    seed.job("proj-a", "gen-a", "restoredVideo", status="running")

    first = counted.poll(key, "gen-a", "proj-a")
    assert first.status == 200
    assert "restoredVideo" not in first.body
    # hasVideo is unknown until the project is read, in the same batch.
    assert first.counts[BATCH] == 1 and first.reads == 6

    for project_id in ("proj-a", None, "proj-a", None):
        poll = counted.poll(key, "gen-a", project_id)
        assert poll.status == 200
        assert "restoredVideo" not in poll.body
        assert _job_docs(poll.requested, "restoredVideo") == []
        assert poll.counts.get(BATCH) == 1 and QUERY not in poll.counts
        # key, generation, inference: the project and the finished preprocessing are
        # remembered (tests/functions/test_read_memory.py)
        assert poll.reads == 3


def test_poll_without_project_id_costs_query_and_key_read_then_one_batch(
    seed: Seeder, counted: Counted
) -> None:
    key = seed.world("proj-a", "gen-a", has_video=False)
    seed.job("proj-a", "gen-a", "inference", status="running", progress=10)

    first = counted.poll(key, "gen-a")
    assert first.status == 200
    assert first.body["apiProjectId"] == "proj-a"
    # Round trip 1: the query and the key read (concurrently); round trip 2: one batch.
    assert first.counts[QUERY] == 1 and first.counts[BATCH] == 2
    assert first.counts.get("results") == 1
    key_path = f"apiKeys/{key_hash(key)}"
    assert first.requested.count(key_path) == 1
    # The generation came back from the query, so the batch does not read it again.
    assert "apiProjects/proj-a/generations/gen-a" not in first.requested

    for _ in range(3):
        later = counted.poll(key, "gen-a")
        assert later.status == 200
        assert later.body == first.body
        assert later.counts == {BATCH: 1, "found": 4, "missing": 1}
        assert later.reads == 5


def test_video_poll_without_project_id_reads_six_documents_once_remembered(
    seed: Seeder, counted: Counted
) -> None:
    key = seed.world("proj-v", "gen-v", has_video=True)
    assert counted.poll(key, "gen-v").status == 200
    later = counted.poll(key, "gen-v")
    assert later.counts[BATCH] == 1 and QUERY not in later.counts
    assert later.reads == 6
    assert len(_job_docs(later.requested, "restoredVideo")) == 1


class _KeyReadMustOverlapQuery(FirestoreStore):
    """A store whose query only returns once the key read has been issued.

    A handler that read the key after the query would leave the query
    waiting for the full grace period, and the test below would fail.
    """

    key_read_started = threading.Event()
    overlapped = False

    def get_documents(self, doc_paths: Sequence[paths.DocPath]) -> dict[paths.DocPath, Any]:
        if any(p[0] == paths.API_KEYS for p in doc_paths):
            type(self).key_read_started.set()
        return super().get_documents(doc_paths)

    def find_generations(self, generation_id: str, limit: int = 5) -> list[FoundGeneration]:
        type(self).overlapped = type(self).key_read_started.wait(timeout=10)
        return super().find_generations(generation_id, limit)


def test_first_poll_without_project_id_reads_the_key_while_the_query_runs(
    seed: Seeder, db: firestore.Client
) -> None:
    key = seed.world("proj-a", "gen-a")
    _KeyReadMustOverlapQuery.key_read_started = threading.Event()
    settings = Settings(project=TEST_PROJECT, api_key_cache_ttl=0)
    counted = counted_handler(settings, _KeyReadMustOverlapQuery)
    assert counted.poll(key, "gen-a").status == 200
    assert _KeyReadMustOverlapQuery.overlapped


def test_ownership_is_checked_on_every_poll_from_fresh_documents(
    seed: Seeder, counted: Counted, db: firestore.Client
) -> None:
    key = seed.world("proj-a", "gen-a")
    assert counted.poll(key, "gen-a").status == 200
    assert counted.poll(key, "gen-a", "proj-a").status == 200

    db.document("apiProjects", "proj-a").update({"userId": "someone-else"})
    for project_id in (None, "proj-a"):
        poll = counted.poll(key, "gen-a", project_id)
        assert (poll.status, poll.body["code"]) == (403, "forbidden")
        assert poll.counts[BATCH] == 1

    db.document("apiProjects", "proj-a").update({"userId": "user-1"})
    db.document("apiKeys", key_hash(key)).update({"status": "revoked"})
    poll = counted.poll(key, "gen-a")
    assert (poll.status, poll.body["code"]) == (403, "api_key_inactive")


def test_cross_owner_poll_is_refused_with_the_same_round_trips(
    seed: Seeder, counted: Counted
) -> None:
    owner_key = seed.world("proj-a", "gen-a", "user-1")
    other_key = seed.api_key("user-2")
    assert counted.poll(owner_key, "gen-a").status == 200

    for _ in range(2):
        poll = counted.poll(other_key, "gen-a", "proj-a")
        assert (poll.status, poll.body["code"]) == (403, "forbidden")
        # Key, project and generation exist; the two audio job documents do not.
        assert poll.counts == {BATCH: 1, "found": 3, "missing": 2}
        # Without apiProjectId, the owner's polls do not tell the other user where to look
        # (issue 19): like an unknown id, it is searched for on every poll.
        poll = counted.poll(other_key, "gen-a")
        assert (poll.status, poll.body["code"]) == (403, "forbidden")
        assert poll.counts == {BATCH: 2, QUERY: 1, "results": 1, "found": 2, "missing": 2}


def test_a_wrong_project_id_does_not_evict_the_remembered_project(
    seed: Seeder, counted: Counted
) -> None:
    key = seed.world("proj-a", "gen-a")
    seed.project("proj-b", "user-1")
    assert counted.poll(key, "gen-a").status == 200

    wrong = counted.poll(key, "gen-a", "proj-b")
    assert (wrong.status, wrong.body["code"]) == (404, "generation_not_found")

    later = counted.poll(key, "gen-a")
    assert later.status == 200 and later.body["apiProjectId"] == "proj-a"
    assert later.counts[BATCH] == 1 and QUERY not in later.counts


def test_unknown_generation_is_looked_up_again_on_every_poll(
    seed: Seeder, counted: Counted
) -> None:
    key = seed.api_key("user-1")
    for _ in range(2):
        poll = counted.poll(key, "gen-missing")
        assert (poll.status, poll.body["code"]) == (404, "generation_not_found")
        assert poll.counts[QUERY] == 1 and poll.counts[BATCH] == 1

    # Created later (the dispatcher writes it after answering the client): now found.
    seed.project("proj-late", "user-1")
    seed.generation("proj-late", "gen-missing", "user-1")
    poll = counted.poll(key, "gen-missing")
    assert poll.status == 200 and poll.body["apiProjectId"] == "proj-late"


def test_the_floor_reads_the_same_documents_in_one_batch(
    seed: Seeder, counted: Counted, db: firestore.Client
) -> None:
    floor = functions_framework.create_app(
        target="floor", source=str(ROOT / "diffio_progress" / "bench" / "floor_function.py")
    ).test_client()
    for video in (False, True):
        project_id, generation_id = f"proj-{video}", f"gen-{video}"
        key = seed.world(project_id, generation_id, has_video=video)
        seed.job(project_id, generation_id, "inference", status="running")
        counted.poll(key, generation_id, project_id)  # the function learns hasVideo
        function = counted.poll(key, generation_id, project_id)

        before = floor.get(COUNTS_PATH).get_json()
        body = {"generationId": generation_id, "apiProjectId": project_id, "hasVideo": video}
        answer = floor.post("/", json=body, headers={"X-Api-Key": key})
        assert answer.status_code == 200
        assert f"apiKeys/{key_hash(key)}" in answer.get_json()
        assert diff(floor.get(COUNTS_PATH).get_json(), before) == function.counts
