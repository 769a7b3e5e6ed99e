"""Measure the reaper: its cost per call, and how soon a killed worker's stage reads failed.

    python -m diffio_progress.bench.reaper cost       # reads and Cloud Run calls per call
    python -m diffio_progress.bench.reaper latency    # 20 kills in `run`'s world, 15 s period

``cost`` runs the deployed reaper in process on its own emulator, its Firestore
client counting RPCs and documents on the gRPC channel, against the Cloud Run
stand-in, with 0, 100 and 1,000 stale running stages (and 100 dead ones).
``latency`` starts ``python -m diffio_progress run`` and kills workers through
the simulator, timing each from the stand-in reporting FAILED until the stage
reads ``failed`` in Firestore. Loopback only.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

from google.cloud import firestore

from diffio_progress.core import paths
from diffio_progress.functions.cloud_run import CloudRunExecutions, executions_client
from diffio_progress.functions.firestore import FirestoreConnection
from diffio_progress.functions.reaper.lookups import ReaperLookup
from diffio_progress.functions.reaper.store import ReaperStore
from diffio_progress.functions.reaper.sweep import Reaper
from diffio_progress.tools import cloud_run_standin as replies
from diffio_progress.tools import emulator
from diffio_progress.tools.cloud_run_standin import CloudRunStandIn
from diffio_progress.tools.executions import StandInExecutions
from diffio_progress.tools.simulator import KILLED, Failure, Pace, ensure_generation, simulate

from .rpc_count import RpcCounter, client_factory, diff, reads, rpcs

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "diffio-bench-reaper"
CALLS = 3


def seed(db: firestore.Client, standin: CloudRunStandIn, count: int, reply: str) -> None:
    """``count`` stages quiet for ten minutes, their executions in state ``reply``."""
    stale = datetime.now(UTC) - timedelta(minutes=10)
    for start in range(0, count, 500):
        batch = db.batch()
        for i in range(start, min(start + 500, count)):
            name = replies.execution_name(f"exec-{reply.lower()}-{i}")
            standin.script(name, replies.reply_for(name, reply))
            document = {"status": "running", "progress": 50, "jobState": "RUNNING"}
            document.update(executionName=name, updatedAt=stale - timedelta(milliseconds=i))
            batch.set(db.document(*paths.job("bench", f"gen-{reply}-{i}", "inference")), document)
        batch.commit()


def cost(host_port: str) -> None:
    counter = RpcCounter()
    print(
        "stages in Firestore       | call | checked failed errors | reads  RPCs | Cloud Run calls"
    )
    for count, reply in ((0, "RUNNING"), (100, "RUNNING"), (1000, "RUNNING"), (100, "FAILED")):
        emulator.clear(host_port, PROJECT)
        with CloudRunStandIn() as standin:
            db = firestore.Client(project=PROJECT)
            seed(db, standin, count, reply)
            lookup = ReaperLookup(
                CloudRunExecutions(
                    deadline=2.0,
                    cache_ttl=0,  # calls a minute apart share nothing
                    client_factory=lambda: executions_client(standin.host_port),
                )
            )
            store = ReaperStore(FirestoreConnection(5.0, client_factory(counter, PROJECT)))
            reaper = Reaper(store, lookup, min_age_seconds=60, batch=500)
            for call in range(1, CALLS + 1):
                before, asked = counter.snapshot(), standin.total_requests()
                started = time.perf_counter()
                summary = reaper()
                elapsed = time.perf_counter() - started
                counts = diff(counter.snapshot(), before)
                label = f"{count:>5} {reply.lower():<7}"
                print(
                    f"{label:<25} | {call:>4} | {summary.checked:>7} {summary.failed:>6} "
                    f"{summary.lookup_errors:>6} | {reads(counts):>5} {rpcs(counts):>5} | "
                    f"{standin.total_requests() - asked:>5}   ({elapsed:.2f} s)",
                    flush=True,
                )


def latency(kills: int, period: float, spacing: float) -> list[float]:
    """Start `run`'s world, kill ``kills`` workers ``spacing`` s apart; seconds flip -> failed."""
    port, firestore_port = emulator.free_port(), emulator.free_port()
    command = [sys.executable, "-m", "diffio_progress", "run", "--port", str(port)]
    command += ["--firestore-port", str(firestore_port), "--reaper-seconds", str(period)]
    env = {k: v for k, v in os.environ.items() if k != "FIRESTORE_EMULATOR_HOST"}
    with ExitStack() as stack:
        world = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        stack.callback(world.wait, 60)
        stack.callback(world.terminate)
        setting = _wait_for_world(iter(world.stdout or []))
        os.environ["FIRESTORE_EMULATOR_HOST"] = setting["FIRESTORE_EMULATOR_HOST"]
        db = firestore.Client(project=setting["GOOGLE_CLOUD_PROJECT"])
        flipped: dict[str, float] = {}
        failed: dict[str, float] = {}
        killing = threading.Event()
        killing.set()
        watcher = threading.Thread(target=_watch, args=(db, flipped, failed, killing), daemon=True)
        watcher.start()
        threads = []
        for i in range(kills):
            generation = f"gen-kill-{i:02}-{int(time.time())}"
            thread = threading.Thread(
                target=_kill, args=(db, setting, generation, flipped), daemon=True
            )
            thread.start()
            threads.append(thread)
            time.sleep(spacing)
        for thread in threads:
            thread.join(120)
        killing.clear()
        watcher.join(4 * period + 30)
        if len(failed) < len(flipped) or len(flipped) < kills:
            raise SystemExit(f"{kills - len(failed)} killed stages never read failed")
        return sorted(failed[g] - flipped[g] for g in flipped)


def _wait_for_world(lines: Iterator[str]) -> dict[str, str]:
    for line in lines:
        found = re.search(r"(FIRESTORE_EMULATOR_HOST=\S+ .*CLOUD_RUN_EMULATOR_HOST=\S+)", line)
        if found:
            return dict(pair.split("=", 1) for pair in found.group(1).split()[:3])
    raise SystemExit("`run` stopped before it was ready")


def _kill(
    db: firestore.Client, setting: dict[str, str], gen: str, flipped: dict[str, float]
) -> None:
    executions = StandInExecutions(setting["CLOUD_RUN_EMULATOR_HOST"], db.project)
    ensure_generation(db, "demo-audio", gen, user_id="demo-user", has_video=False)

    def seen(stage: str, status: str) -> None:
        if status == KILLED:
            flipped[gen] = time.monotonic()  # the stand-in answered the flip to FAILED

    status = simulate(
        db,
        "demo-audio",
        gen,
        has_video=False,
        pace=Pace(step_seconds=0.2, steps=6, queued_seconds=0.2),
        failure=Failure("inference", killed=True),
        on_change=seen,
        executions=executions,
    )
    assert status == KILLED


def _watch(
    db: firestore.Client,
    flipped: dict[str, float],
    failed: dict[str, float],
    killing: threading.Event,
) -> None:
    """From the first kill on, read every killed stage 10 times a second until it is failed."""
    while killing.is_set() or len(failed) < len(flipped):
        waiting = [
            db.document(*paths.job("demo-audio", g, "inference"))
            for g in list(flipped)
            if g not in failed
        ]
        if waiting:
            for snapshot in db.get_all(waiting):
                if (snapshot.to_dict() or {}).get("status") == "failed":
                    failed[snapshot.reference.parent.parent.id] = time.monotonic()
        time.sleep(0.1)


def _summary(seconds: list[float], period: float) -> str:
    quantiles = statistics.quantiles(seconds, n=10)
    return (
        f"{len(seconds)} kills, reaper every {period:g} s: flip -> failed in Firestore "
        f"min {seconds[0]:.1f} s, median {statistics.median(seconds):.1f} s, "
        f"mean {statistics.mean(seconds):.1f} s, p90 {quantiles[-1]:.1f} s, max {seconds[-1]:.1f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffio_progress.bench.reaper")
    which = parser.add_subparsers(dest="what", required=True)
    which.add_parser("cost", help="reads and Cloud Run calls per call with 0, 100, 1,000 stages")
    timed = which.add_parser("latency", help="kill workers in `run`'s world, time the reaper")
    timed.add_argument("--kills", type=int, default=20)
    timed.add_argument("--period", type=float, default=15.0, help="reaper period (s)")
    timed.add_argument("--spacing", type=float, default=3.7, help="seconds between kills")
    args = parser.parse_args(argv)
    if args.what == "latency":
        seconds = latency(args.kills, args.period, args.spacing)
        print(", ".join(f"{s:.1f}" for s in seconds))
        print(_summary(seconds, args.period))
        return 0
    with emulator.FirestoreEmulator() as emu:
        os.environ["FIRESTORE_EMULATOR_HOST"] = emu.host_port
        cost(emu.host_port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
