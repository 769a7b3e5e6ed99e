"""Benchmark the function against the floor, on a local emulator (``make bench``).

Starts its own Firestore emulator and three functions-framework servers (the
deployed handler; the same with the optional API-key cache on; and the floor:
one batched read), seeds audio and video generations, then measures with
requests interleaved between them:
latency p50/p99, closed-loop throughput at 8 and 32 clients, and Firestore
RPCs and documents read per poll, counted on the gRPC channel. Loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from google.cloud import firestore

from diffio_progress.core.auth import hash_api_key
from diffio_progress.tools import emulator
from diffio_progress.tools.processes import (
    NotServing,
    start_function,
    stop_group,
    wait_until_serving,
)

from .load import (
    HttpClient,
    Poll,
    PollFactory,
    interleaved_latency,
    interleaved_throughput,
    rpc_counts,
)
from .report import Report, render
from .rpc_count import diff

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "diffio-progress-bench"
USERS = ("user-a", "user-b", "user-c", "user-d")


@dataclass(frozen=True)
class Generation:
    project_id: str
    generation_id: str
    video: bool
    key: str


def seed(db: firestore.Client, count: int, prefix: str) -> list[Generation]:
    """``count`` generations alternating audio and video, each in its own project."""
    keys = {user: f"bench-key-{user}" for user in USERS}
    now = datetime.now(UTC)
    batch = db.batch()
    for user, key in keys.items():
        batch.set(
            db.document("apiKeys", hash_api_key(key)),
            {"userId": user, "status": "active", "permissions": {"read": True}, "keyId": user},
        )
    made = []
    for i in range(count):
        user, video = USERS[i % len(USERS)], i % 2 == 1
        project_id, generation_id = f"{prefix}-proj-{i}", f"{prefix}-gen-{i}"
        project = db.document("apiProjects", project_id)
        generation = project.collection("generations").document(generation_id)
        batch.set(project, {"userId": user, "hasVideo": video, "audioOriginalMp3Ready": True})
        batch.set(
            generation,
            {"generationId": generation_id, "apiProjectId": project_id, "userId": user},
        )
        jobs = {"preProcessing": ("complete", 100), "inference": ("running", 40)}
        if video:
            jobs["restoredVideo"] = ("pending", 0)
        for stage, (status, progress) in jobs.items():
            batch.set(
                generation.collection("jobs").document(stage),
                {"status": status, "progress": progress, "jobId": f"job-{i}", "updatedAt": now},
            )
        made.append(Generation(project_id, generation_id, video, keys[user]))
        if (i + 1) % 50 == 0:
            batch.commit()
            batch = db.batch()
    batch.commit()
    return made


@contextmanager
def served(target: str, source: Path, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """functions-framework serving ``target`` on a free loopback port; yields URL and pid."""
    port = emulator.free_port()
    process = start_function(
        target,
        source,
        port,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,  # the function's one log line per request, as deployed
    )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_serving(process, url, 30)
        except NotServing as failed:
            raise RuntimeError(f"functions-framework ({target}) {failed}") from None
        yield url, process.pid
    finally:
        stop_group(process)


def _poll(url: str, gen: Generation, *, project: bool, floor: bool, key: bool = True) -> Poll:
    body: dict[str, object] = {"generationId": gen.generation_id}
    if project:
        body["apiProjectId"] = gen.project_id
    if floor:
        body["hasVideo"] = gen.video
        body["withoutKey"] = not key
    return Poll(url, json.dumps(body).encode(), gen.key)


def kinds(function: str, cached: str, floor: str, gens: list[Generation]) -> dict[str, PollFactory]:
    def pick(i: int) -> Generation:
        return gens[i % len(gens)]

    return {
        "with": lambda i: _poll(function, pick(i), project=True, floor=False),
        "without": lambda i: _poll(function, pick(i), project=False, floor=False),
        "with_cached": lambda i: _poll(cached, pick(i), project=True, floor=False),
        "floor": lambda i: _poll(floor, pick(i), project=True, floor=True),
        "floor_no_key": lambda i: _poll(floor, pick(i), project=True, floor=True, key=False),
    }


def count_per_poll(
    function: str, cached: str, floor: str, fresh: list[Generation]
) -> dict[str, dict[str, int]]:
    """RPCs and reads of single polls, sequentially, diffing each server's totals."""
    client = HttpClient()
    result: dict[str, dict[str, int]] = {}
    audio = next(g for g in fresh if not g.video)
    video = next(g for g in fresh if g.video)
    audio2 = next(g for g in fresh if not g.video and g != audio)
    video2 = next(g for g in fresh if g.video and g != video)

    def measure(name: str, poll: Poll) -> None:
        before = rpc_counts(client, poll.base_url)
        status, _ = client.post(poll)
        if status != 200:
            raise RuntimeError(f"{name}: HTTP {status}")
        result[name] = diff(rpc_counts(client, poll.base_url), before)

    for media, first, second in (("audio", audio, audio2), ("video", video, video2)):
        measure(f"{media}.with.first", _poll(function, first, project=True, floor=False))
        measure(f"{media}.with.later", _poll(function, first, project=True, floor=False))
        measure(f"{media}.without.first", _poll(function, second, project=False, floor=False))
        measure(f"{media}.without.later", _poll(function, second, project=False, floor=False))
        measure(f"{media}.with_cached.first", _poll(cached, first, project=True, floor=False))
        measure(f"{media}.with_cached.later", _poll(cached, first, project=True, floor=False))
        measure(f"{media}.floor", _poll(floor, first, project=True, floor=True))
        measure(f"{media}.floor_no_key", _poll(floor, first, project=True, floor=True, key=False))
    client.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffio_progress.bench", description=__doc__)
    parser.add_argument("--generations", type=int, default=100, help="seeded, half video")
    parser.add_argument("--latency-rounds", type=int, default=400)
    parser.add_argument("--key-cache-ttl", type=float, default=10.0, help="of the third server")
    # Many short runs, alternating, so that load from elsewhere falls on every kind alike.
    parser.add_argument("--seconds", type=float, default=1.5, help="per throughput run")
    parser.add_argument("--rounds", type=int, default=4, help="throughput runs per kind")
    # functions-framework's own defaults (gunicorn gthread): 1 worker, 4 threads per CPU.
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=(os.cpu_count() or 1) * 4)
    args = parser.parse_args(argv)

    started = time.monotonic()
    env = {
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "WORKERS": str(args.workers),
        "THREADS": str(args.threads),
    }
    with ExitStack() as stack:
        emu = stack.enter_context(emulator.FirestoreEmulator())
        env["FIRESTORE_EMULATOR_HOST"] = emu.host_port
        os.environ["FIRESTORE_EMULATOR_HOST"] = emu.host_port
        db = firestore.Client(project=PROJECT)
        gens = seed(db, args.generations, "g")
        fresh = seed(db, 48, "fresh")
        source = ROOT / "diffio_progress" / "bench"
        function, function_pid = stack.enter_context(
            served("get_generation_progress", source / "counted_function.py", env)
        )
        cached_env = {**env, "API_KEY_CACHE_TTL_SECONDS": str(args.key_cache_ttl)}
        cached, _ = stack.enter_context(
            served("get_generation_progress", source / "counted_function.py", cached_env)
        )
        floor, floor_pid = stack.enter_context(served("floor", source / "floor_function.py", env))
        polls = kinds(function, cached, floor, gens)

        counts = count_per_poll(function, cached, floor, fresh[:8])
        # First polls without apiProjectId, each on a generation never polled before.
        unseen = fresh[8:]
        first = interleaved_latency(
            {
                "without_first": lambda i: _poll(function, unseen[i], project=False, floor=False),
                "floor": lambda i: _poll(floor, unseen[i], project=True, floor=True),
            },
            len(unseen),
        )["without_first"]
        # Warm up: every generation's first poll (the query), and both servers' code paths.
        interleaved_latency(polls, len(gens))
        latency = interleaved_latency(polls, args.latency_rounds)
        throughput = {
            clients: interleaved_throughput(
                {k: polls[k] for k in ("with", "without", "floor")},
                clients,
                args.seconds,
                args.rounds,
                {"with": function_pid, "without": function_pid, "floor": floor_pid},
            )
            for clients in (8, 32)
        }
    report = Report(
        command=" ".join(["python -m diffio_progress.bench", *(argv or sys.argv[1:])]),
        setup=(
            f"{platform.python_implementation()} {platform.python_version()}, "
            f"{os.cpu_count()} CPUs, functions-framework (gunicorn gthread) workers={args.workers} "
            f"threads={args.threads} for every server, {args.generations} generations "
            f"(half video), emulator and clients on the same machine, "
            f"{time.monotonic() - started:.0f} s"
        ),
        latency={**latency, "without_first": first},
        throughput=throughput,
        counts=counts,
        key_cache_ttl=args.key_cache_ttl,
    )
    print(render(report))
    return 0
