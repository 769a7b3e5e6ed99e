"""Reads per poll with what never changes remembered (poll_memory.py), counted on the wire."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from google.cloud import firestore

from diffio_progress.functions.config import Settings
from diffio_progress.functions.progress.poll_memory import PROJECT_RECHECK_SECONDS
from tests.clocks import Clock
from tests.counted_handler import BATCH, QUERY, Counted, counted_handler
from tests.project import TEST_PROJECT
from tests.seed import Seeder, key_hash


@pytest.fixture
def counted(db: firestore.Client, clock: Clock) -> Counted:
    # The key cache off, as the targets say: every batch reads the key.
    return counted_handler(Settings(project=TEST_PROJECT, api_key_cache_ttl=0), monotonic=clock)


def documents(requested: Sequence[str]) -> list[str]:
    """Requested paths by kind: key, project, generation, or the stage's name."""

    def kind(path: str) -> str:
        parts = path.split("/")
        if parts[0] == "apiKeys":
            return "key"
        return {2: "project", 4: "generation"}.get(len(parts), parts[-1])

    return sorted(map(kind, requested))


DONE = {"status": "complete", "progress": 100, "jobState": "SUCCEEDED"}
RUNNING = {"status": "running", "progress": 40, "jobState": "RUNNING"}


def audio_in_inference(seed: Seeder) -> str:
    """proj-a/gen-a: an audio generation whose preprocessing is done and inference running."""
    key = seed.world("proj-a", "gen-a", audioOriginalMp3Ready=True)
    seed.job("proj-a", "gen-a", "preProcessing", **DONE)
    seed.job("proj-a", "gen-a", "inference", **RUNNING)
    return key


def test_a_steady_audio_poll_in_inference_reads_three_documents(
    seed: Seeder, counted: Counted
) -> None:
    key = audio_in_inference(seed)

    first = counted.poll(key, "gen-a", "proj-a")
    assert first.status == 200 and first.reads == 6  # restoredVideo too: hasVideo unknown yet
    for _ in range(3):
        poll = counted.poll(key, "gen-a", "proj-a")
        assert poll.body == first.body
        assert poll.counts[BATCH] == 1 and poll.reads == 3
        assert documents(poll.requested) == ["generation", "inference", "key"]


def test_a_steady_video_poll_in_restored_video_reads_three_documents(
    seed: Seeder, counted: Counted
) -> None:
    key = seed.world("proj-v", "gen-v", has_video=True, audioOriginalMp3Ready=True)
    seed.job("proj-v", "gen-v", "preProcessing", **DONE)
    seed.job("proj-v", "gen-v", "inference", **DONE)
    seed.job("proj-v", "gen-v", "restoredVideo", **RUNNING)

    first = counted.poll(key, "gen-v", "proj-v")
    assert first.reads == 6
    poll = counted.poll(key, "gen-v", "proj-v")
    assert poll.body == first.body and poll.body["status"] == "processing"
    assert poll.counts[BATCH] == 1 and poll.reads == 3
    assert documents(poll.requested) == ["generation", "key", "restoredVideo"]


def test_without_project_id_a_known_generation_reads_the_same_three(
    seed: Seeder, counted: Counted
) -> None:
    key = audio_in_inference(seed)

    first = counted.poll(key, "gen-a")
    assert first.counts[QUERY] == 1
    later = counted.poll(key, "gen-a")
    assert later.counts == {BATCH: 1, "found": 3}
    assert documents(later.requested) == ["generation", "inference", "key"]


def test_a_stage_that_finishes_is_read_once_more_then_remembered(
    seed: Seeder, counted: Counted
) -> None:
    key = audio_in_inference(seed)
    counted.poll(key, "gen-a", "proj-a")

    seed.job("proj-a", "gen-a", "inference", **DONE)
    done = counted.poll(key, "gen-a", "proj-a")
    assert done.body["status"] == "complete" and done.reads == 3
    after = counted.poll(key, "gen-a", "proj-a")
    assert after.body == done.body
    assert documents(after.requested) == ["generation", "key"]


def test_a_running_stage_failed_by_the_reaper_shows_on_the_next_poll(
    seed: Seeder, counted: Counted
) -> None:
    key = audio_in_inference(seed)
    counted.poll(key, "gen-a", "proj-a")
    seed.job("proj-a", "gen-a", "inference", status="failed", error="Cloud Run execution failed")
    assert counted.poll(key, "gen-a", "proj-a").body["status"] == "failed"


def test_the_project_is_read_while_its_mp3_can_still_complete_preprocessing(
    seed: Seeder, db: firestore.Client, counted: Counted
) -> None:
    key = seed.world("proj-a", "gen-a")
    seed.job("proj-a", "gen-a", "preProcessing", status="running", progress=50)
    counted.poll(key, "gen-a", "proj-a")
    steady = counted.poll(key, "gen-a", "proj-a")
    assert "project" in documents(steady.requested)

    db.document("apiProjects/proj-a").update({"audioOriginalMp3Ready": True})
    flipped = counted.poll(key, "gen-a", "proj-a")
    assert flipped.body["preProcessing"]["status"] == "complete"  # rule 6, at once


def test_a_deleted_generation_is_404_on_the_next_poll(
    seed: Seeder, db: firestore.Client, counted: Counted
) -> None:
    key = seed.world("proj-a", "gen-a", audioOriginalMp3Ready=True)
    seed.job("proj-a", "gen-a", "preProcessing", **DONE)
    counted.poll(key, "gen-a", "proj-a")
    db.document("apiProjects/proj-a/generations/gen-a").delete()
    assert counted.poll(key, "gen-a", "proj-a").status == 404
    assert counted.poll(key, "gen-a").status == 404


def test_a_deleted_project_is_404_within_the_recheck_bound(
    seed: Seeder, db: firestore.Client, counted: Counted, clock: Clock
) -> None:
    key = audio_in_inference(seed)
    counted.poll(key, "gen-a", "proj-a")
    db.document("apiProjects/proj-a").delete()  # its generations left behind

    clock.seconds += PROJECT_RECHECK_SECONDS - 1
    assert counted.poll(key, "gen-a", "proj-a").status == 200  # inside the documented bound
    clock.seconds += 1
    due = counted.poll(key, "gen-a", "proj-a")
    assert due.status == 404 and "project" in documents(due.requested)


def test_a_project_is_read_again_once_per_recheck_period(
    seed: Seeder, counted: Counted, clock: Clock
) -> None:
    key = audio_in_inference(seed)
    counted.poll(key, "gen-a", "proj-a")
    clock.seconds += PROJECT_RECHECK_SECONDS
    assert counted.poll(key, "gen-a", "proj-a").reads == 4
    assert counted.poll(key, "gen-a", "proj-a").reads == 3


def test_a_generation_created_again_at_the_same_path_is_read_afresh(
    seed: Seeder, db: firestore.Client, counted: Counted
) -> None:
    key = seed.world("proj-a", "gen-a", audioOriginalMp3Ready=True)
    seed.job("proj-a", "gen-a", "preProcessing", **DONE)
    seed.job("proj-a", "gen-a", "inference", **DONE)
    assert counted.poll(key, "gen-a", "proj-a").body["status"] == "complete"

    generation = db.document("apiProjects/proj-a/generations/gen-a")
    for stage in ("preProcessing", "inference"):
        generation.collection("jobs").document(stage).delete()
    generation.delete()
    seed.generation("proj-a", "gen-a", "user-1")
    seed.job("proj-a", "gen-a", "inference", **RUNNING)

    again = counted.poll(key, "gen-a", "proj-a")
    assert again.body["status"] == "processing"
    assert again.body["inference"]["progress"] == 40
    assert again.counts[BATCH] == 2  # the one extra round trip of this rare case


def test_ownership_is_checked_on_every_poll_with_remembered_facts(
    seed: Seeder, counted: Counted
) -> None:
    owner = seed.world("proj-a", "gen-a", audioOriginalMp3Ready=True)
    seed.job("proj-a", "gen-a", "preProcessing", **DONE)
    stranger = seed.api_key("user-2")
    assert counted.poll(owner, "gen-a", "proj-a").status == 200
    for _ in range(2):
        refused = counted.poll(stranger, "gen-a", "proj-a")
        assert refused.status == 403 and refused.body["code"] == "forbidden"
        assert f"apiKeys/{key_hash(stranger)}" in refused.requested
