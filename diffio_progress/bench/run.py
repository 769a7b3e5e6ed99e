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
import sys
import time
from contextlib import ExitStack

from google.cloud import firestore

from diffio_progress.tools import emulator

from .abuse import bursts, flood, render_abuse
from .harness import PROJECT, ROOT, Generation, poll_of, seed, served
from .load import (
    HttpClient,
    Poll,
    PollFactory,
    interleaved_latency,
    interleaved_throughput,
    rpc_counts,
)
from .reads import count_reads, render_reads
from .report import Report, render
from .rpc_count import diff


def kinds(function: str, cached: str, floor: str, gens: list[Generation]) -> dict[str, PollFactory]:
    def pick(i: int) -> Generation:
        return gens[i % len(gens)]

    return {
        "with": lambda i: poll_of(function, pick(i), project=True, floor=False),
        "without": lambda i: poll_of(function, pick(i), project=False, floor=False),
        "with_cached": lambda i: poll_of(cached, pick(i), project=True, floor=False),
        "floor": lambda i: poll_of(floor, pick(i), project=True, floor=True),
        "floor_no_key": lambda i: poll_of(floor, pick(i), project=True, floor=True, key=False),
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
        measure(f"{media}.with.first", poll_of(function, first, project=True, floor=False))
        measure(f"{media}.with.later", poll_of(function, first, project=True, floor=False))
        measure(f"{media}.without.first", poll_of(function, second, project=False, floor=False))
        measure(f"{media}.without.later", poll_of(function, second, project=False, floor=False))
        measure(f"{media}.with_cached.first", poll_of(cached, first, project=True, floor=False))
        measure(f"{media}.with_cached.later", poll_of(cached, first, project=True, floor=False))
        measure(f"{media}.floor", poll_of(floor, first, project=True, floor=True))
        measure(f"{media}.floor_no_key", poll_of(floor, first, project=True, floor=True, key=False))
    client.close()
    return result


def _poll_for(url: str, key: str, generation_id: str, project_id: str | None) -> Poll:
    body = {"generationId": generation_id}
    if project_id is not None:
        body["apiProjectId"] = project_id
    return Poll(url, json.dumps(body).encode(), key)


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
    parser.add_argument("--bursts", type=int, default=5, help="coalescing bursts of 50 polls")
    parser.add_argument("--flood-rate", type=float, default=500, help="one key's requests/s")
    parser.add_argument("--flood-seconds", type=float, default=10)
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
                "without_first": lambda i: poll_of(function, unseen[i], project=False, floor=False),
                "floor": lambda i: poll_of(floor, unseen[i], project=True, floor=True),
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
        reads_table = count_reads(db, function, cached, _poll_for)
        # 50 polls at once from one key would meet its limit (a burst of 40): not under test here.
        unlimited, _ = stack.enter_context(
            served(
                "get_generation_progress",
                source / "counted_function.py",
                {**env, "KEY_RATE_LIMIT_PER_SECOND": "0"},
            )
        )
        same = poll_of(unlimited, fresh[-1], project=True, floor=False)
        coalesced = bursts([same] * 50, args.bursts)
        distinct = bursts(
            [poll_of(unlimited, g, project=True, floor=False) for g in gens[:50]], args.bursts
        )
        flooding = fresh[-2]
        limited_flood = flood(
            poll_of(function, flooding, project=True, floor=False),
            args.flood_rate,
            args.flood_seconds,
        )
        unlimited_flood = flood(
            poll_of(unlimited, flooding, project=True, floor=False),
            args.flood_rate,
            args.flood_seconds,
        )
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
        reads=render_reads(reads_table, args.key_cache_ttl),
        abuse=render_abuse(coalesced, distinct, limited_flood, unlimited_flood),
    )
    print(render(report))
    return 0
