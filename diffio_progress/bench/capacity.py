"""Throughput and p99 of one instance on one CPU, for each functions-framework THREADS setting.

    python -m diffio_progress.bench.capacity        (about 2 minutes; loopback only)

The function (the deployed main.py) is pinned to CPU 0 with ``taskset``; the
emulator and the load generator to CPU 1. For each THREADS value, as many
closed-loop clients as threads poll, which is what Cloud Run does to an
instance deployed with ``--concurrency`` equal to THREADS.
"""

from __future__ import annotations

import argparse
import os
from contextlib import ExitStack

from google.cloud import firestore

from diffio_progress.tools import emulator

from .harness import PROJECT, ROOT, Generation, poll_of, seed, served
from .load import Poll, Throughput, closed_loop, process_tree_cpu, process_tree_rss

THREADS = (1, 4, 8, 16, 32, 80)


def measure(
    threads: int, env: dict[str, str], gens: list[Generation], seconds: float
) -> Throughput:
    """One THREADS setting: the deployed main.py on CPU 0, as many clients as threads."""
    threads_env = {**env, "WORKERS": "1", "THREADS": str(threads)}
    with served("get_generation_progress", ROOT / "main.py", threads_env, cpus=(0,)) as (url, pid):

        def factory(i: int) -> Poll:
            return poll_of(url, gens[i % len(gens)], project=True, floor=False)

        closed_loop(factory, threads, 1.0)  # warm up: connections, caches, the JIT of the emulator
        cpu_before = process_tree_cpu(pid)
        run = closed_loop(factory, threads, seconds)
        run.server_cpu = process_tree_cpu(pid) - cpu_before
        run.server_rss = process_tree_rss(pid)
        return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffio_progress.bench.capacity")
    parser.add_argument("--seconds", type=float, default=10.0, help="per THREADS value")
    parser.add_argument("--generations", type=int, default=200)
    args = parser.parse_args(argv)
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("needs two CPUs: one for the function, one for the emulator and load")
    os.sched_setaffinity(0, {1})  # this process, and the emulator it starts, on CPU 1
    with ExitStack() as stack:
        emu = stack.enter_context(emulator.FirestoreEmulator())
        os.environ["FIRESTORE_EMULATOR_HOST"] = emu.host_port
        env = {**os.environ, "GOOGLE_CLOUD_PROJECT": PROJECT}
        gens = seed(firestore.Client(project=PROJECT), args.generations, "cap")
        print(
            "| THREADS (= concurrency) | polls/s | p50 | p99 | errors | function CPU busy "
            "| CPU per poll | polls/s at 100% CPU | memory (RSS) |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for threads in THREADS:
            run = measure(threads, env, gens, args.seconds)
            busy = run.server_cpu / run.seconds
            print(
                f"| {threads} | {run.per_second:.0f} | {run.samples.p50 * 1000:.1f} ms "
                f"| {run.samples.percentile(99) * 1000:.1f} ms | {run.errors} | {busy:.0%} "
                f"| {run.cpu_per_request * 1000:.2f} ms | {1 / run.cpu_per_request:.0f} "
                f"| {run.server_rss / 2**20:.0f} MiB |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
