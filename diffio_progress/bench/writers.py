"""What a GenerationWriter call costs on an emulator, beside StageWriter, alone and racing.

python -m diffio_progress.bench.writers    # about 20 s; starts its own emulator on loopback
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable

from google.cloud import firestore

from diffio_progress.core import paths
from diffio_progress.tools import emulator
from diffio_progress.worker.generation_writer import GenerationWriter
from diffio_progress.worker.stage_writer import StageWriter

PROJECT = "diffio-bench-writers"
CALLS = 200
# Per writer. Racing writers on the emulator deadlock now and then (both read, both want to
# write) until it aborts one, seconds later: fewer calls keep the run short.
RACE_CALLS = 50


def _generation(db: firestore.Client, generation_id: str) -> GenerationWriter:
    """A fresh generation document, and a writer with its own client (as another process has)."""
    db.document(*paths.project("p")).set({"userId": "u"})
    db.document(*paths.generation("p", generation_id)).set(
        {"generationId": generation_id, "apiProjectId": "p", "userId": "u"}
    )
    return GenerationWriter(firestore.Client(project=PROJECT), "p", generation_id)


def _timed(call: Callable[[int], object], count: int = CALLS) -> list[float]:
    took = []
    for i in range(count):
        start = time.perf_counter()
        call(i)
        took.append((time.perf_counter() - start) * 1000)
    return took


def _line(name: str, took: list[float]) -> str:
    ordered = sorted(took)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    median, most = statistics.median(took), ordered[-1]
    return (
        f"{name:<40} n={len(took):<4} p50 {median:6.2f} ms  p95 {p95:6.2f} ms  max {most:7.2f} ms"
    )


def _race(calls: Callable[[int], Callable[[int], object]]) -> tuple[list[float], float]:
    """Two writers at once, each making ``RACE_CALLS`` calls; ``calls(n)`` is writer n's call."""
    took: list[float] = []
    barrier = threading.Barrier(2)

    def run(call: Callable[[int], object]) -> None:
        barrier.wait()
        took.extend(_timed(call, RACE_CALLS))

    threads = [threading.Thread(target=run, args=(calls(n),)) for n in range(2)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return took, time.perf_counter() - start


def main() -> int:
    with emulator.FirestoreEmulator() as emu:
        os.environ["FIRESTORE_EMULATOR_HOST"] = emu.host_port
        db = firestore.Client(project=PROJECT)
        warm = _generation(db, "warm-up")
        _timed(lambda i: warm.queue(1000 - i), 20)
        down = _generation(db, "down")
        print(_line("queue(), a lower position", _timed(lambda i: down.queue(1000 - i, "GPU"))))
        print(_line("queue(), a higher position: refused", _timed(lambda i: down.queue(2000 + i))))
        many = [_generation(db, f"gen-{i}") for i in range(CALLS)]
        print(_line("transcription('pending')", _timed(lambda i: many[i].transcription("pending"))))
        print(
            _line(
                "transcription('available')", _timed(lambda i: many[i].transcription("available"))
            )
        )
        print(_line("dequeue()", _timed(lambda i: many[i].dequeue())))
        stage = StageWriter(firestore.Client(project=PROJECT), "p", "down", "inference")
        print(
            _line("StageWriter.progress(), for comparison", _timed(lambda i: stage.progress(i / 2)))
        )
        # Two dispatchers count down overlapping ranges (200..151 and 170..121) on one generation.
        racers = (_generation(db, "race"), _generation(db, "race"))
        took, wall = _race(lambda n: lambda i: racers[n].queue((200, 170)[n] - i))
        final = (racers[0].read() or {})["queue"]["position"]
        print(_line("queue(), two dispatchers racing", took))
        print(f"  {wall:.2f} s for both; final position {final} (the lower range ends at 121)")
        stages = [StageWriter(firestore.Client(project=PROJECT), "p", "race", "inference")] * 2
        took, wall = _race(lambda n: lambda i: stages[n].progress(i / 2 + n))
        print(_line("StageWriter.progress(), two racing", took))
        print(f"  {wall:.2f} s for both")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
