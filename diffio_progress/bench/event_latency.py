"""Time from a job document's commit to the receiver's verified delivery, in the local world.

    python -m diffio_progress.bench.event_latency [--generations 20]

The pieces are the ones `run` starts: the event function served by
functions-framework, the bridge from emulator listeners, and the receiver that
verifies each delivery with the SDK. Each generation is driven by the
worker-side writer; the commit time is the job document's update time as
Firestore stored it, the arrival time is when the receiver had verified the
event. Loopback only; prints p50 and max.
"""

from __future__ import annotations

import argparse
import os
from contextlib import ExitStack
from datetime import datetime

from google.cloud import firestore

from diffio_progress.core import paths
from diffio_progress.core.events import COMPLETED_EVENT, PROCESSING_EVENT, QUEUED_EVENT
from diffio_progress.tools.event_world import start_event_world
from diffio_progress.worker.stage_writer import StageWriter

from .event_world import USER, Arrivals, bench_key, local_firestore, printer, summary

HOST = "127.0.0.1"
PROJECT_ID = "latency-audio"


def committed(db: firestore.Client, path: paths.DocPath) -> datetime:
    """When the document's last write was committed (its update time)."""
    snapshot = db.document(*path).get()
    moment: datetime = snapshot.update_time
    return moment


def job(generation_id: str, stage: str) -> paths.DocPath:
    return paths.job(PROJECT_ID, generation_id, stage)


def one_generation(
    db: firestore.Client, key_id: str, arrivals: Arrivals, index: int
) -> dict[str, float]:
    """Drive one audio generation; seconds from each triggering commit to its verified event."""
    generation_id = f"lat-{index:02d}"
    generation_path = paths.generation(PROJECT_ID, generation_id)
    db.document(*generation_path).set(
        {
            "generationId": generation_id,
            "apiProjectId": PROJECT_ID,
            "userId": USER,
            "apiKeyId": key_id,
            "modelKey": "diffio-4.6-pro",
        }
    )
    latencies = {QUEUED_EVENT: _wait(db, arrivals, generation_path, generation_id, QUEUED_EVENT)}
    pre = StageWriter(db, PROJECT_ID, generation_id, "preProcessing")
    inference = StageWriter(db, PROJECT_ID, generation_id, "inference")
    pre.start(message="Decoding audio")
    latencies[PROCESSING_EVENT] = _wait(
        db, arrivals, pre.ref._path, generation_id, PROCESSING_EVENT
    )
    pre.complete()
    inference.start()
    inference.progress(50, "Restoring speech")
    inference.complete()
    latencies[COMPLETED_EVENT] = _wait(
        db, arrivals, job(generation_id, "inference"), generation_id, COMPLETED_EVENT
    )
    return latencies


def _wait(
    db: firestore.Client, arrivals: Arrivals, path: tuple[str, ...], generation_id: str, kind: str
) -> float:
    commit = committed(db, path)
    arrived = arrivals.wait_for(generation_id, kind)
    return (arrived - commit).total_seconds()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffio_progress.bench.event_latency")
    parser.add_argument("--generations", type=int, default=20)
    args = parser.parse_args(argv)
    say = printer()
    arrivals = Arrivals()
    with ExitStack() as stack:
        db = local_firestore(stack)
        env = dict(os.environ)
        world = start_event_world(
            stack, env, HOST, say, on_event=arrivals.on_event, on_repeat=arrivals.on_repeat
        )
        _, key_id = bench_key(db)
        db.document(*paths.project(PROJECT_ID)).set({"userId": USER, "hasVideo": False})
        world.wait_until_serving()
        world.add_endpoint(db, key_id)
        world.start_bridge(db, stack, say)
        one_generation(db, key_id, arrivals, -1)  # warm-up: first imports, first connections
        results = [one_generation(db, key_id, arrivals, i) for i in range(args.generations)]
    jobs = [r[t] for r in results for t in (PROCESSING_EVENT, COMPLETED_EVENT)]
    say(f"Commit to verified delivery over {args.generations} audio generations (local world):")
    say(f"  job-document writes (processing, completed): {summary(jobs)}")
    queued = summary([r[QUEUED_EVENT] for r in results])
    say(f"  generation creation (queued):                {queued}")
    say(f"  duplicate deliveries seen: {arrivals.duplicates}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
