"""No stage starves: a cursor in Firestore goes on from where the last call, anywhere, stopped."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from diffio_progress.core.reaping import Cursor, Summary
from diffio_progress.functions.firestore import FirestoreConnection
from diffio_progress.functions.reaper.store import CURSOR_DOCUMENT, ReaperStore
from diffio_progress.functions.reaper.sweep import Reaper
from diffio_progress.tools import cloud_run_standin as replies
from diffio_progress.tools.cloud_run_standin import CloudRunStandIn
from tests.functions.reaper.stages import Stages
from tests.project import TEST_PROJECT


def oldest_first(stages: Stages, count: int, reply: Callable[[str], replies.Reply]) -> list[str]:
    """``count`` stages, each a minute older than the next; their executions, oldest first."""
    paths = [stages.add(reply, age=timedelta(minutes=60 - i)) for i in range(count)]
    return [stages.execution(path) for path in paths]


def test_healthy_silent_stages_at_the_head_do_not_starve_a_dead_one(
    stages: Stages, standin: CloudRunStandIn, make_reaper: Callable[..., Reaper]
) -> None:
    healthy = oldest_first(stages, 7, replies.running)
    dead = stages.add(replies.failed, age=timedelta(minutes=1))
    reaper = make_reaper(batch=3)

    summaries = [reaper() for _ in range(3)]

    assert summaries == [Summary(3), Summary(3), Summary(2, failed=1)]
    assert stages.read(dead)["status"] == "failed"
    # One lap: every candidate was asked about exactly once, in order.
    assert [standin.requests(name) for name in healthy] == [1] * 7
    # The lap ended, so the next call starts over from the oldest.
    assert reaper() == Summary(3)
    assert [standin.requests(name) for name in healthy] == [2, 2, 2, 1, 1, 1, 1]


def test_hung_executions_at_the_head_cost_one_call_each_and_are_passed(
    stages: Stages, standin: CloudRunStandIn, make_reaper: Callable[..., Reaper]
) -> None:
    """Cloud Run hangs: each call returns with what it finished; the next goes on from there."""
    hung = oldest_first(stages, 4, replies.hang)
    dead = stages.add(replies.failed, age=timedelta(minutes=1))
    # Two lookups at once; a hung one holds its worker past the time for starting more.
    reaper = make_reaper(deadline=0.3, workers=2)

    summaries = [reaper() for _ in range(3)]

    assert summaries == [
        Summary(2, lookup_errors=2),
        Summary(2, lookup_errors=2),
        Summary(1, failed=1),
    ]
    assert stages.read(dead)["status"] == "failed"
    assert [standin.requests(name) for name in hung] == [1] * 4


def test_a_second_instance_goes_on_where_the_first_stopped(
    stages: Stages, standin: CloudRunStandIn, make_reaper: Callable[..., Reaper]
) -> None:
    executions = oldest_first(stages, 6, replies.running)
    first, second = make_reaper(batch=2), make_reaper(batch=2)

    first()
    assert [standin.requests(n) for n in executions] == [1, 1, 0, 0, 0, 0]
    second()
    assert [standin.requests(n) for n in executions] == [1, 1, 1, 1, 0, 0]
    first()
    assert [standin.requests(n) for n in executions] == [1, 1, 1, 1, 1, 1]


def test_stages_written_since_the_cursor_passed_are_reached_in_the_same_lap(
    stages: Stages, standin: CloudRunStandIn, make_reaper: Callable[..., Reaper]
) -> None:
    executions = oldest_first(stages, 4, replies.running)
    reaper = make_reaper(batch=2)
    reaper()
    # A worker reports on the first stage (already passed): it moves behind the rest.
    first_path = next(p for p in _job_paths(stages) if stages.execution(p) == executions[0])
    stages.db.document(*first_path).update({"updatedAt": stages.now - timedelta(minutes=2)})

    reaper()
    reaper()
    assert [standin.requests(n) for n in executions] == [2, 1, 1, 1]


def test_a_cursor_saved_since_it_was_read_is_kept(db: object) -> None:
    store = ReaperStore(FirestoreConnection(5.0, project=TEST_PROJECT))
    read = store.read_cursor()
    assert read.cursor == Cursor()

    assert store.save_cursor(Cursor(lap=1), read)
    assert store.save_cursor(Cursor(lap=2), read) is False  # a concurrent call saved first
    again = store.read_cursor()
    assert again.cursor == Cursor(lap=1)
    assert store.save_cursor(Cursor(lap=2), again)
    assert store.save_cursor(Cursor(lap=3), again) is False
    assert store.read_cursor().cursor == Cursor(lap=2)


def test_a_cursor_edited_into_nonsense_starts_the_lap_over(
    stages: Stages, standin: CloudRunStandIn, make_reaper: Callable[..., Reaper]
) -> None:
    executions = oldest_first(stages, 2, replies.running)
    stages.db.document(*CURSOR_DOCUMENT).set(
        {"lap": 3, "afterPath": "not//a/path", "afterUpdatedAt": stages.now}
    )
    assert make_reaper()() == Summary(2)
    assert [standin.requests(n) for n in executions] == [1, 1]


def _job_paths(stages: Stages) -> list[tuple[str, ...]]:
    return [tuple(s.reference.path.split("/")) for s in stages.db.collection_group("jobs").stream()]
