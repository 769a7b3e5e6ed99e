"""Races on the emulator: reapers at once, and a reaper against the worker's own ``complete``."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from google.cloud import firestore

from diffio_progress.core import paths
from diffio_progress.core.reaping import Summary
from diffio_progress.functions.cloud_run import LookupResult
from diffio_progress.functions.reaper.sweep import Reaper
from diffio_progress.tools import cloud_run_standin as replies
from diffio_progress.worker.stage_writer import StageWriter
from tests.functions.reaper.stages import Stages
from tests.log_records import Records
from tests.project import TEST_PROJECT
from tests.races import race

TERMINAL = ("complete", "failed")


def writer_for(path: paths.DocPath) -> StageWriter:
    """A worker's writer, patient enough for the emulator's deadlocks.

    Two transactions that read one stage and then both write it deadlock on the
    emulator until its lock timeout, about 10 s, aborts one (calls of 9.6-11.9 s
    measured on a loaded machine; Firestore itself resolves this at once). The
    worker's default 60 s of patience could run out after a few of those in a
    row on a busy CI machine. What is tested is who wins, not how fast.
    """
    where = paths.stage_of_job(path)
    assert where is not None
    return StageWriter(firestore.Client(project=TEST_PROJECT), *where, patience_seconds=180)


def test_two_reapers_at_once_fail_each_dead_stage_exactly_once(
    stages: Stages, make_reaper: Callable[..., Reaper]
) -> None:
    dead = [stages.add(replies.failed) for _ in range(20)]
    alive = [stages.add(replies.running) for _ in range(5)]
    before_alive = [stages.read(p) for p in alive]
    summaries: list[Summary] = []
    lock = threading.Lock()

    def reap(reaper: Reaper) -> Callable[[], None]:
        def run() -> None:
            for _ in range(3):
                summary = reaper()
                with lock:
                    summaries.append(summary)

        return run

    race(reap(make_reaper()), reap(make_reaper()))

    assert all(stages.read(p)["status"] == "failed" for p in dead)
    # Each stage was written failed by exactly one call, whichever won its transaction.
    assert sum(s.failed for s in summaries) == len(dead)
    assert [stages.read(p) for p in alive] == before_alive


def test_a_worker_completing_while_the_reaper_asks_cloud_run_wins(
    stages: Stages, make_reaper: Callable[..., Reaper]
) -> None:
    """The worker wrote ``complete``, then its container died: the stage stays complete."""
    path = stages.add(replies.failed)
    reaper = make_reaper()
    ask = reaper.lookup

    def ask_while_the_worker_completes(names: Sequence[str]) -> list[LookupResult]:
        assert writer_for(path).complete("Done")
        return ask(names)

    reaper.lookup = ask_while_the_worker_completes

    assert reaper() == Summary(checked=1, failed=0)
    document = stages.read(path)
    assert (document["status"], document["jobState"], document["error"]) == (
        "complete",
        "SUCCEEDED",
        None,
    )


def test_a_stage_another_transaction_holds_is_left_for_a_later_call(
    stages: Stages, make_reaper: Callable[..., Reaper], reaper_logs: Records
) -> None:
    held_path, free_path = stages.add(replies.failed), stages.add(replies.failed)
    holder = firestore.Client(project=TEST_PROJECT)
    held, release = threading.Event(), threading.Event()

    @firestore.transactional
    def hold(transaction: Any) -> None:
        holder.document(*held_path).get(transaction=transaction)
        held.set()
        release.wait(60)

    thread = threading.Thread(target=hold, args=(holder.transaction(),))
    thread.start()
    held.wait(30)
    reaper = make_reaper()
    reaper.store.write_attempts = 2  # each attempt waits out the emulator's lock (about 2 s)
    try:
        assert reaper() == Summary(checked=2, failed=1)
    finally:
        release.set()
        thread.join(30)

    assert (stages.read(held_path)["status"], stages.read(free_path)["status"]) == (
        "running",
        "failed",
    )
    [warning] = reaper_logs.warnings()
    assert "/".join(held_path) in warning and "left for a later call" in warning
    # The lap ended with the page; the next call finds the stage again and writes it.
    assert reaper() == Summary(checked=1, failed=1)
    assert stages.read(held_path)["status"] == "failed"


def test_reapers_racing_workers_complete_leave_one_terminal_state_per_stage(
    stages: Stages, make_reaper: Callable[..., Reaper]
) -> None:
    """Each worker completes its stage as its execution is reported FAILED (died right after).

    Two reapers hammer the same stages meanwhile. Whoever commits first decides;
    nobody overwrites a finished stage, and an observer never sees one change.
    """
    racing = [stages.add(replies.failed) for _ in range(15)]
    completed: list[paths.DocPath] = []
    reaped: list[int] = []
    seen: dict[paths.DocPath, list[str]] = defaultdict(list)

    def workers() -> None:
        for path in racing:
            if writer_for(path).complete():
                completed.append(path)
            time.sleep(0.03)  # spread the completions over the reapers' calls

    def reap(reaper: Reaper) -> Callable[[], None]:
        def run() -> None:
            for _ in range(50):
                reaped.append(reaper().failed)
                if all(seen[p] and seen[p][-1] in TERMINAL for p in racing):
                    return

        return run

    reader = firestore.Client(project=TEST_PROJECT)
    refs = [reader.document(*p) for p in racing]
    list(reader.get_all(refs))  # connected before the race starts

    def observe() -> None:
        for snapshot in reader.get_all(refs):
            document: dict[str, Any] = snapshot.to_dict() or {}
            seen[tuple(snapshot.reference.path.split("/"))].append(document["status"])

    race(workers, reap(make_reaper()), reap(make_reaper()), observe=observe, timeout=240)

    final = {p: stages.read(p)["status"] for p in racing}
    assert set(final.values()) <= set(TERMINAL)
    assert {p for p, status in final.items() if status == "complete"} == set(completed)
    assert sum(reaped) == len(racing) - len(completed)
    for path in racing:
        terminal = [status for status in seen[path] if status in TERMINAL]
        assert len(set(terminal)) <= 1, (path, seen[path])
        assert terminal[-1:] in ([], [final[path]])
