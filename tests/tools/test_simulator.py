"""The simulator queues a generation, then runs it; every step is what a poll then reports."""

from __future__ import annotations

from typing import Any

import pytest

from diffio_progress.tools.simulator import NEXT_MESSAGE, QUEUE_MESSAGE, Failure, Pace, simulate
from tests.seed import Seeder

INSTANT = Pace(step_seconds=0, steps=2, queued_seconds=0, queue_steps=3)


def poller(client: Any, key: str, generation: str) -> Any:
    def poll() -> dict[str, Any]:
        response = client.post(
            "/v1/get_generation_progress",
            json={"generationId": generation},
            headers={"X-Api-Key": key},
        )
        assert response.status_code == 200
        body: dict[str, Any] = response.get_json()
        return body

    return poll


def test_a_new_generation_waits_in_the_queue_then_runs(seed: Seeder, client: Any) -> None:
    key = seed.world("proj-v", "gen-v", has_video=True)
    poll = poller(client, key, "gen-v")
    seen: list[tuple[str, str, dict[str, Any]]] = []

    # Called in the simulator's thread right after each write: the poll sees exactly that step.
    def on_change(what: str, status: str) -> None:
        seen.append((what, status, poll()))

    assert simulate(seed.db, "proj-v", "gen-v", has_video=True, pace=INSTANT, on_change=on_change)

    steps = [(what, status) for what, status, _ in seen]
    assert steps[:5] == [
        ("transcription", "pending"),
        ("queue", "position 2"),
        ("queue", "position 1"),
        ("queue", "position 0"),
        ("queue", "taken by a worker"),
    ]
    bodies = {(what, status): body for what, status, body in seen}
    for position in (2, 1, 0):
        queued = bodies["queue", f"position {position}"]
        assert queued["status"] == "pending"
        assert queued["transcription"] == {"status": "pending"}
        message = QUEUE_MESSAGE if position else NEXT_MESSAGE
        assert queued["queue"] == {"position": position, "message": message}
        assert queued["stageProgress"] == {
            "stage": "preProcessing",
            "index": 1,
            "count": 3,
            "progress": 0,
        }
    assert "queue" not in bodies["queue", "taken by a worker"]
    running = bodies["preProcessing", "running"]
    assert (running["stage"], running["stageProgress"]["index"]) == ("preProcessing", 1)
    assert running["transcription"] == {"status": "pending"}
    # Transcription becomes available partway through: with preprocessing, before inference.
    assert (
        steps.index(("transcription", "available"))
        == steps.index(("preProcessing", "complete")) + 1
    )
    assert bodies["transcription", "available"]["transcription"] == {"status": "available"}
    assert bodies["inference", "running"]["stageProgress"]["index"] == 2
    assert bodies["restoredVideo", "running"]["stageProgress"] == {
        "stage": "restoredVideo",
        "index": 3,
        "count": 3,
        "progress": 0,
    }
    final = poll()
    assert final["status"] == "complete"
    assert final["transcription"] == {"status": "available"}
    assert not {"stage", "stageProgress", "queue"} & set(final)


@pytest.mark.parametrize(
    ("stage", "transcription"), [("preProcessing", "unavailable"), ("inference", "available")]
)
def test_a_failure_before_the_transcript_leaves_it_unavailable(
    seed: Seeder, client: Any, stage: str, transcription: str
) -> None:
    key = seed.world("proj-a", "gen-a")
    status = simulate(
        seed.db, "proj-a", "gen-a", has_video=False, pace=INSTANT, failure=Failure(stage)
    )

    body = poller(client, key, "gen-a")()
    assert (status, body["status"], body["stage"]) == ("failed", "failed", stage)
    assert body["transcription"] == {"status": transcription}
    assert "queue" not in body


def test_no_queue_steps_means_no_queue(seed: Seeder) -> None:
    seed.world("proj-a", "gen-a")
    seen: list[str] = []
    pace = Pace(step_seconds=0, steps=2, queued_seconds=0, queue_steps=0)

    simulate(
        seed.db,
        "proj-a",
        "gen-a",
        has_video=False,
        pace=pace,
        on_change=lambda w, s: seen.append(w),
    )

    assert "queue" not in seen
    generation = seed.db.document("apiProjects", "proj-a", "generations", "gen-a").get().to_dict()
    assert generation is not None and "queue" not in generation and "dequeuedAt" not in generation
