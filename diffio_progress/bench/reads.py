"""Billed reads per poll in each scenario of docs/performance.md's table, counted on the wire."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.cloud import firestore

from diffio_progress.core.auth import hash_api_key

from .load import HttpClient, Poll, rpc_counts
from .rpc_count import diff, reads, rpcs

DONE: dict[str, Any] = {"status": "complete", "progress": 100, "jobState": "SUCCEEDED"}
RUNNING: dict[str, Any] = {"status": "running", "progress": 40, "jobState": "RUNNING"}
PENDING: dict[str, Any] = {"status": "pending", "progress": 0, "jobState": "PENDING"}


@dataclass(frozen=True)
class Scenario:
    name: str
    video: bool
    mp3_ready: bool
    jobs: dict[str, dict[str, Any]]


SCENARIOS = (
    Scenario("audio, queued (no job started)", False, False, {}),
    Scenario("audio, preprocessing running", False, False, {"preProcessing": RUNNING}),
    Scenario(
        "audio, inference running", False, True, {"preProcessing": DONE, "inference": RUNNING}
    ),
    Scenario("audio, complete", False, True, {"preProcessing": DONE, "inference": DONE}),
    Scenario(
        "video, inference running",
        True,
        True,
        {"preProcessing": DONE, "inference": RUNNING, "restoredVideo": PENDING},
    ),
    Scenario(
        "video, restoredVideo running",
        True,
        True,
        {"preProcessing": DONE, "inference": DONE, "restoredVideo": RUNNING},
    ),
)


@dataclass(frozen=True)
class ReadCounts:
    """One scenario's counts: each a dict of RPC and document tallies."""

    first: dict[str, int]
    steady: dict[str, int]
    first_without_project: dict[str, int]
    steady_without_project: dict[str, int]
    steady_key_cache: dict[str, int]


def seed_scenario(db: firestore.Client, scenario: Scenario, tag: str) -> tuple[str, str, str]:
    """A key, project and generation in ``scenario``'s state; returns (key, project, generation)."""
    key, project_id, generation_id = f"reads-key-{tag}", f"reads-proj-{tag}", f"reads-gen-{tag}"
    now = datetime.now(UTC)
    batch = db.batch()
    batch.set(
        db.document("apiKeys", hash_api_key(key)),
        {"userId": "reader", "status": "active", "permissions": {"read": True}, "keyId": tag},
    )
    project = db.document("apiProjects", project_id)
    batch.set(
        project,
        {
            "userId": "reader",
            "hasVideo": scenario.video,
            "audioOriginalMp3Ready": scenario.mp3_ready,
        },
    )
    generation = project.collection("generations").document(generation_id)
    batch.set(
        generation, {"generationId": generation_id, "apiProjectId": project_id, "userId": "reader"}
    )
    for stage, fields in scenario.jobs.items():
        batch.set(generation.collection("jobs").document(stage), {**fields, "updatedAt": now})
    batch.commit()
    return key, project_id, generation_id


def count_reads(
    db: firestore.Client,
    function: str,
    cached: str,
    make_poll: Callable[[str, str, str, str | None], Poll],
) -> dict[str, ReadCounts]:
    """Each scenario on fresh documents: the first poll, then a steady one, three ways."""
    client = HttpClient()

    def measure(poll: Poll) -> dict[str, int]:
        before = rpc_counts(client, poll.base_url)
        status, body = client.post(poll)
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
        return diff(rpc_counts(client, poll.base_url), before)

    result = {}
    try:
        for n, scenario in enumerate(SCENARIOS):
            key, project_id, generation_id = seed_scenario(db, scenario, f"{n}-with")
            with_project = make_poll(function, key, generation_id, project_id)
            first = measure(with_project)
            measure(with_project)
            steady = measure(with_project)
            key, _, generation_id = seed_scenario(db, scenario, f"{n}-without")
            without = make_poll(function, key, generation_id, None)
            first_without = measure(without)
            measure(without)
            steady_without = measure(without)
            key, project_id, generation_id = seed_scenario(db, scenario, f"{n}-cached")
            cached_poll = make_poll(cached, key, generation_id, project_id)
            measure(cached_poll)
            steady_cached = measure(cached_poll)
            result[scenario.name] = ReadCounts(
                first, steady, first_without, steady_without, steady_cached
            )
    finally:
        client.close()
    return result


def render_reads(counts: dict[str, ReadCounts], key_cache_ttl: float) -> list[str]:
    """The reads-per-poll table: billed reads (round trips in brackets)."""

    def cell(c: dict[str, int]) -> str:
        return f"{reads(c)} ({rpcs(c)} RPC{'s' if rpcs(c) != 1 else ''})"

    rows = [
        "| scenario | first poll | steady poll | without apiProjectId: first | "
        f"without: steady | steady, {key_cache_ttl:g} s key cache |",
        "|---|---|---|---|---|---|",
    ]
    for name, c in counts.items():
        rows.append(
            f"| {name} | {cell(c.first)} | {cell(c.steady)} | {cell(c.first_without_project)} "
            f"| {cell(c.steady_without_project)} | {cell(c.steady_key_cache)} |"
        )
    return rows
