"""Progress-only updates are paced; a status change, a new message and the final 100 are not."""

from __future__ import annotations

import time
from typing import Any

from google.cloud import firestore

from diffio_progress.bench.rpc_count import CountingClient, RpcCounter
from diffio_progress.worker.stage_writer import StageWriter
from tests.project import TEST_PROJECT

PROJECT, GENERATION = "proj-pace", "gen-pace"


def counted_writer(**kwargs: Any) -> tuple[StageWriter, RpcCounter]:
    counter = RpcCounter()
    client = CountingClient(counter, project=TEST_PROJECT)
    return StageWriter(client, PROJECT, GENERATION, "inference", **kwargs), counter


def commits(counter: RpcCounter) -> int:
    return counter.snapshot().get("calls.Commit", 0)


def stored(writer: StageWriter) -> dict[str, Any]:
    document = writer.read()
    assert document is not None
    return document


def test_a_burst_of_progress_is_a_few_writes_and_the_latest_arrives(db: firestore.Client) -> None:
    writer, counter = counted_writer()
    assert writer.start(message="Restoring")
    for percent in range(1, 41):
        assert writer.progress(percent)
    # Within the interval only the first went out; the latest follows when it is due.
    assert commits(counter) <= 3
    deadline = time.monotonic() + 30
    while stored(writer)["progress"] != 40 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stored(writer)["progress"] == 40
    assert commits(counter) <= 4


def test_a_new_message_a_status_change_and_the_end_go_out_at_once(db: firestore.Client) -> None:
    writer, _ = counted_writer(min_interval_seconds=60)
    writer.start(message="Loading model")
    writer.progress(10, "Model loaded")
    writer.progress(20, "Model loaded")  # held: progress only
    assert stored(writer)["progress"] == 10
    writer.progress(30, "Processing audio")
    assert (stored(writer)["progress"], stored(writer)["statusMessage"]) == (
        30,
        "Processing audio",
    )
    writer.progress(35)  # held again
    writer.fail("Inference failed")
    # Nothing held is lost: the progress reached before the failure is kept.
    assert (stored(writer)["status"], stored(writer)["progress"]) == ("failed", 35)


def test_complete_goes_out_at_once_and_the_held_progress_is_dropped(db: firestore.Client) -> None:
    writer, counter = counted_writer(min_interval_seconds=60)
    writer.start()
    writer.progress(50)
    writer.progress(60)
    before = commits(counter)
    assert writer.complete()
    assert commits(counter) == before + 1
    assert (stored(writer)["status"], stored(writer)["progress"]) == ("complete", 100)


def test_the_interval_comes_from_the_environment(db: firestore.Client) -> None:
    environ = {"PROGRESS_MIN_INTERVAL_SECONDS": "0"}
    writer = StageWriter.from_environment(PROJECT, GENERATION, "inference", db=db, environ=environ)
    writer.start()
    for percent in (1, 2, 3):
        writer.progress(percent)
        assert stored(writer)["progress"] == percent
