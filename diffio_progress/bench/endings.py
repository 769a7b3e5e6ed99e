"""Every generation ends: killed and silently exited workers read failed within the reaper's bound.

    python -m diffio_progress.bench.endings                 # 20 generations, seed 18
    python -m diffio_progress.bench.endings --generations 40 --seed 7

Issue 18's reaper half of the fault-injection benchmark. On its own emulator
and Cloud Run stand-in, with ``reap_stalled_jobs`` served and POSTed every
``--period`` seconds (``REAPER_MIN_AGE_SECONDS=--min-age``), it runs
``--generations`` simulated generations whose workers, by a seeded draw,
finish, are killed (execution FAILED) or exit cleanly without writing
``complete`` (execution SUCCEEDED, stage left running), each at a drawn stage.
A watcher reads every generation's documents 5 times a second and composes
its status (rules 3-7, no live lookup: what Firestore itself says). The time
from the worker's last write to the write that ended the generation is read
from the documents' ``updatedAt`` (the emulator's clock), so polling adds
nothing to it. Loopback only, bounded by ``--timeout``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime

from google.cloud import firestore

from diffio_progress.core import paths
from diffio_progress.core.stages import (
    COMPLETE,
    FAILED,
    build_stages,
    overall_status,
    stage_names,
)
from diffio_progress.functions.config import (
    CLOUD_RUN_CACHE_TTL_SECONDS,
    FIRESTORE_EMULATOR_HOST,
    GOOGLE_CLOUD_PROJECT,
    REAPER_MIN_AGE_SECONDS,
)
from diffio_progress.tools import emulator, world_reaper
from diffio_progress.tools.executions import StandInExecutions
from diffio_progress.tools.simulator import Failure, Pace, ensure_generation, simulate

PROJECT = "diffio-bench-endings"
FINISH, KILL, SILENT = "finishes", "killed", "silent exit"
# Quick workers: a kill or exit comes 0.2 s after the last write, well inside the minimum age.
PACE = Pace(step_seconds=0.2, steps=6, queued_seconds=0.3, queue_steps=0)
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Planned:
    """One generation: its own project (rule 6 stays out of it), media, and worker's fate."""

    generation: str
    video: bool
    fate: str
    stage: str | None

    @property
    def project(self) -> str:
        return f"proj-{self.generation}"

    @property
    def stages(self) -> tuple[str, ...]:
        return stage_names(self.video)

    @property
    def expected(self) -> str:
        return COMPLETE if self.fate == FINISH else FAILED


@dataclass
class Watched:
    """What the watcher has seen of one generation."""

    last_write: datetime | None = None
    status: str | None = None
    ended_at: datetime | None = None
    stages: dict[str, str] = field(default_factory=dict)


def plan(count: int, seed: int) -> list[Planned]:
    rng = random.Random(seed)
    planned = []
    for i in range(count):
        video = rng.random() < 0.5
        fate = rng.choice((FINISH, KILL, SILENT))
        stage = None if fate == FINISH else rng.choice(stage_names(video))
        planned.append(Planned(f"gen-end-{seed}-{i:03}", video, fate, stage))
    return planned


def run_worker(db: firestore.Client, standin: str, item: Planned) -> None:
    ensure_generation(db, item.project, item.generation, user_id="bench", has_video=item.video)
    failure = None
    if item.stage is not None:
        failure = Failure(item.stage, killed=item.fate == KILL, silent=item.fate == SILENT)
    simulate(
        db,
        item.project,
        item.generation,
        has_video=item.video,
        pace=PACE,
        failure=failure,
        executions=StandInExecutions(standin, PROJECT),
        progress_interval=0,  # every write goes out: the last one is the worker's last
    )


def look(db: firestore.Client, planned: list[Planned], seen: dict[str, Watched]) -> None:
    """One read of every unended generation: its project and job documents, in one RPC."""
    open_items = [p for p in planned if seen[p.generation].status not in (COMPLETE, FAILED)]
    refs = []
    for item in open_items:
        refs.append(db.document(*paths.project(item.project)))
        refs += [db.document(*paths.job(item.project, item.generation, s)) for s in item.stages]
    docs = {s.reference.path: s.to_dict() for s in db.get_all(refs) if s.exists}
    for item in open_items:
        project = docs.get("/".join(paths.project(item.project))) or {}
        jobs = {
            s: docs.get("/".join(paths.job(item.project, item.generation, s))) for s in item.stages
        }
        stamps = [j["updatedAt"] for j in jobs.values() if j and "updatedAt" in j]
        stages = build_stages(project, jobs)
        status = overall_status(stage.status for stage in stages.values())
        watched = seen[item.generation]
        watched.stages = {name: stage.status for name, stage in stages.items()}
        if status in (COMPLETE, FAILED):
            watched.status, watched.ended_at = status, max(stamps)
        else:
            watched.status = status
            watched.last_write = max(stamps) if stamps else None


def run(
    planned: list[Planned],
    period: float,
    min_age: float,
    timeout: float,
    firestore_host: str | None = None,
) -> dict[str, Watched]:
    """Run the generations against the served reaper until all have ended or ``timeout``.

    On the emulator at ``firestore_host``, or on one of its own.
    """
    with ExitStack() as stack:
        if firestore_host is None:
            firestore_host = stack.enter_context(emulator.FirestoreEmulator()).host_port
        os.environ[FIRESTORE_EMULATOR_HOST] = firestore_host
        env = {**os.environ, GOOGLE_CLOUD_PROJECT: PROJECT}
        env[REAPER_MIN_AGE_SECONDS] = f"{min_age:g}"
        # Deployed, calls come a minute apart and share no cached lookup; so here.
        env[CLOUD_RUN_CACHE_TTL_SECONDS] = "0"
        standin = world_reaper.start_standin(stack)
        world_reaper.start_reaper(stack, env, standin, "127.0.0.1", period, _say)
        db = firestore.Client(project=PROJECT)
        _wait_for_first_call(db, time.monotonic() + 60)
        seen = {p.generation: Watched() for p in planned}
        workers = [
            threading.Thread(target=run_worker, args=(db, standin.host_port, p), daemon=True)
            for p in planned
        ]
        for worker in workers:
            worker.start()
            time.sleep(0.1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            look(db, planned, seen)
            if all(w.status in (COMPLETE, FAILED) for w in seen.values()):
                break
            time.sleep(POLL_SECONDS)
        for worker in workers:
            worker.join(5)
        report(planned, seen, period, min_age)
    return seen


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _wait_for_first_call(db: firestore.Client, deadline: float) -> None:
    """The reaper is served and has been called once: its cursor document exists."""
    while time.monotonic() < deadline:
        if db.document("reaper", "cursor").get().exists:
            return
        time.sleep(0.2)
    raise SystemExit("the reaper was never called")


def report(planned: list[Planned], seen: dict[str, Watched], period: float, min_age: float) -> None:
    fates = [p.fate for p in planned]
    ended = [w.status for w in seen.values()]
    waits = {
        p.generation: (w.ended_at - w.last_write).total_seconds()
        for p in planned
        if p.fate != FINISH and (w := seen[p.generation]).ended_at and w.last_write
    }
    expected = sum(seen[p.generation].status == p.expected for p in planned)
    bound = period + min_age
    over = sum(wait > bound for wait in waits.values())
    longest = max(waits.values(), default=0.0)
    median = statistics.median(waits.values()) if waits else 0.0
    print(f"reaper every {period:g} s, REAPER_MIN_AGE_SECONDS={min_age:g}: bound {bound:g} s")
    running = len(planned) - ended.count(COMPLETE) - ended.count(FAILED)
    print(
        "| generations | killed | silent exits | ended complete | ended failed | still running "
        "| ended as drawn | last write -> end, median / max | bound | over bound |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {len(planned)} | {fates.count(KILL)} | {fates.count(SILENT)} "
        f"| {ended.count(COMPLETE)} | {ended.count(FAILED)} | {running} "
        f"| {expected}/{len(planned)} | {median:.2f} / {longest:.2f} s | {bound:g} s | {over} |"
    )
    for p in planned:
        w = seen[p.generation]
        if w.status != p.expected:
            print(f"  {p.generation} ({p.fate} at {p.stage}): {w.status} {w.stages}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffio_progress.bench.endings")
    parser.add_argument("--generations", type=int, default=20)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--period", type=float, default=1.0, help="reaper period (s)")
    parser.add_argument("--min-age", type=float, default=2.0, help="REAPER_MIN_AGE_SECONDS")
    parser.add_argument("--timeout", type=float, default=45.0, help="give up after (s)")
    args = parser.parse_args(argv)
    planned = plan(args.generations, args.seed)
    seen = run(planned, args.period, args.min_age, args.timeout)
    return 0 if all(seen[p.generation].status == p.expected for p in planned) else 1


if __name__ == "__main__":
    raise SystemExit(main())
