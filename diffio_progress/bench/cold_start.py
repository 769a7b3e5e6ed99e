"""Cold start: process start to the first 200, the deployed function against the floor.

    python -m diffio_progress.bench.cold_start        (about a minute; loopback only)

The floor (bench/floor_function.py) imports the same framework and Firestore
client and does one batched read, so the difference is what the function
imports and builds before its first answer. Rounds alternate the two.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path

from google.cloud import firestore

from diffio_progress.tools import emulator
from diffio_progress.tools.processes import start_function, stop_group

from .harness import PROJECT, ROOT, Generation, seed

PATH = "/v1/get_generation_progress"


def first_answer(target: str, source: Path, body: dict[str, object], key: str) -> float:
    """Seconds from spawning the server to its first 200 for ``body``."""
    port = emulator.free_port()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{PATH}",
        data=json.dumps(body).encode(),
        headers={"X-Api-Key": key, "Content-Type": "application/json"},
        method="POST",
    )
    started = time.perf_counter()
    process = start_function(target, source, port, env=dict(os.environ), stdout=subprocess.DEVNULL)
    try:
        while time.perf_counter() - started < 60:
            if process.poll() is not None:
                raise RuntimeError(f"{target} exited during start-up")
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except urllib.error.HTTPError as error:
                raise RuntimeError(f"{target} answered {error.code}") from None
            except OSError:
                time.sleep(0.005)
        raise RuntimeError(f"{target} gave no 200 within 60 s")
    finally:
        stop_group(process)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffio_progress.bench.cold_start")
    parser.add_argument("--rounds", type=int, default=8, help="starts of each, alternating")
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        emu = stack.enter_context(emulator.FirestoreEmulator())
        os.environ["FIRESTORE_EMULATOR_HOST"] = emu.host_port
        os.environ["GOOGLE_CLOUD_PROJECT"] = PROJECT
        gen: Generation = seed(firestore.Client(project=PROJECT), 2, "cold")[0]
        ids: dict[str, object] = {"generationId": gen.generation_id, "apiProjectId": gen.project_id}
        servers: dict[str, tuple[str, Path, dict[str, object]]] = {
            "function": ("get_generation_progress", ROOT / "main.py", ids),
            "floor": (
                "floor",
                ROOT / "diffio_progress" / "bench" / "floor_function.py",
                {**ids, "hasVideo": gen.video},
            ),
        }
        times: dict[str, list[float]] = {name: [] for name in servers}
        for name in servers:
            first_answer(*servers[name], gen.key)  # warm the disk cache for both
        for round_ in range(args.rounds):
            for name in list(servers)[:: 1 if round_ % 2 == 0 else -1]:
                times[name].append(first_answer(*servers[name], gen.key))
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"Command: python -m diffio_progress.bench.cold_start --rounds {args.rounds}")
    print("| server | starts | median | min | max | / floor |")
    print("|---|---|---|---|---|---|")
    for name, values in times.items():
        print(
            f"| {name} | {len(values)} | {medians[name]:.3f} s | {min(values):.3f} s "
            f"| {max(values):.3f} s | {medians[name] / medians['floor']:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
