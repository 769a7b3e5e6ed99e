"""Events per generation, and Firestore reads per job-document write, against polling every 2 s.

    python -m diffio_progress.bench.event_reads [--step-seconds 1.0] [--progress-interval 2]

One audio and one video generation run through the simulator (the worker-side
writer, at the pace of `run`) at the same time. Every generation and job write
reaches the real event handler (direct sink, a verifying local receiver) through
the bridge, one at a time, on a Firestore client that counts the reads on its
gRPC channel; writes are grouped as `run` sees them. Beside it, a client polls
each generation every 2 s through the real progress handler, also counted,
from its creation until it is complete. Loopback only.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections import Counter, defaultdict
from contextlib import ExitStack
from typing import Any

import flask
from cloudevents.http import from_http

from diffio_progress.core.events import job_status, parse_target
from diffio_progress.functions.config import WEBHOOK_SECRETS_LOCAL_KEY, Settings
from diffio_progress.functions.events.wiring import build_event_handler
from diffio_progress.functions.firestore import FirestoreConnection
from diffio_progress.functions.progress.handler import ProgressHandler
from diffio_progress.functions.store import FirestoreStore
from diffio_progress.functions.webhooks.endpoint_store import new_signing_secret
from diffio_progress.tools.bridge import Bridge, Change
from diffio_progress.tools.cloud_events import written_event
from diffio_progress.tools.event_world import create_endpoint
from diffio_progress.tools.simulator import Pace, ensure_generation, simulate
from diffio_progress.tools.webhook_receiver import WebhookReceiver
from diffio_progress.worker.pacing import DEFAULT_INTERVAL_SECONDS

from .event_world import PROJECT, USER, Arrivals, bench_key, local_firestore, printer
from .rpc_count import RpcCounter, client_factory, reads

POLL_SECONDS = 2.0
KINDS = {
    "audio": ("events-audio", "gen-audio", False),
    "video": ("events-video", "gen-video", True),
}


class Tally:
    """Reads and writes per kind of write, per generation."""

    def __init__(self) -> None:
        self.writes: Counter[tuple[str, str]] = Counter()
        self.reads: Counter[tuple[str, str]] = Counter()

    def add(self, generation: str, kind: str, cost: int) -> None:
        self.writes[(generation, kind)] += 1
        self.reads[(generation, kind)] += cost


def kind_of_write(change: Change) -> str:
    target = parse_target(change.path)
    if target is None or target.stage is None:
        return "generation created" if change.before is None else "generation updated"
    if job_status(change.before) == job_status(change.after):
        return "job: progress only"
    return "job: status change"


def poller(app: flask.Flask, key: str, project_id: str, generation_id: str, stop: Any) -> None:
    client = app.test_client()
    body = {"generationId": generation_id, "apiProjectId": project_id}
    while not stop.is_set():
        answer = client.post("/", json=body, headers={"X-Api-Key": key}).get_json()
        if answer.get("status") in ("complete", "failed"):
            return
        stop.wait(POLL_SECONDS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffio_progress.bench.event_reads")
    parser.add_argument("--step-seconds", type=float, default=1.0)
    # The stage writer's PROGRESS_MIN_INTERVAL_SECONDS: 0 writes every progress update.
    parser.add_argument("--progress-interval", type=float, default=DEFAULT_INTERVAL_SECONDS)
    args = parser.parse_args(argv)
    say = printer()
    tally, arrivals, lock = Tally(), Arrivals(), threading.Lock()
    event_counter = RpcCounter()
    poll_counters = {name: RpcCounter() for name in KINDS}
    with ExitStack() as stack:
        db = local_firestore(stack)
        key, key_id = bench_key(db)
        secret = new_signing_secret()
        receiver = WebhookReceiver(
            secret, arrivals.on_event, say, on_repeat=arrivals.on_repeat
        ).start()
        stack.callback(receiver.stop)
        create_endpoint(db, key_id, receiver.url, secret)
        settings = Settings(
            project=PROJECT,
            webhook_sink="direct",
            webhook_allow_private_urls=True,
            webhook_secrets_local_key=os.environ[WEBHOOK_SECRETS_LOCAL_KEY],  # bench/__init__.py
        )
        connection = FirestoreConnection(5.0, client_factory(event_counter, PROJECT))
        handler = build_event_handler(settings, connection)

        def send(change: Change) -> None:
            with lock:  # one call at a time, so each call's reads are its own
                event_counter.reset()
                handler(
                    from_http(*written_event(PROJECT, change.path, change.before, change.after))
                )
                generation = change.path.split("/")[3]
                tally.add(generation, kind_of_write(change), reads(event_counter.snapshot()))

        bridge = Bridge(db, "", say, send=send).start()
        stack.callback(bridge.stop)
        pace = Pace.scaled(args.step_seconds)
        stop = threading.Event()
        threads = []
        durations: dict[str, float] = {}
        for name, (project_id, generation_id, video) in KINDS.items():
            ensure_generation(
                db, project_id, generation_id, user_id=USER, has_video=video, api_key_id=key_id
            )
            app = polling_app(settings, poll_counters[name])
            polled = (app, key, project_id, generation_id, stop)
            threads.append(threading.Thread(target=poller, args=polled))
            simulated = (
                db,
                project_id,
                generation_id,
                video,
                pace,
                durations,
                name,
                args.progress_interval,
            )
            threads.append(threading.Thread(target=timed_simulation, args=simulated))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for _, generation_id, _ in KINDS.values():
            arrivals.wait_for(generation_id, "generation.completed")
        time.sleep(1)  # let the last progress-only writes through the bridge
    _report(say, tally, arrivals, poll_counters, durations)
    return 0


def polling_app(settings: Settings, counter: RpcCounter) -> flask.Flask:
    """The real progress handler on a counted client, behind a Flask app."""
    progress = ProgressHandler(
        settings, FirestoreStore(FirestoreConnection(5.0, client_factory(counter, PROJECT)))
    )
    app = flask.Flask("poll")
    app.add_url_rule("/", view_func=lambda: progress(flask.request), methods=["POST"])
    return app


def timed_simulation(
    db: Any,
    project_id: str,
    generation_id: str,
    video: bool,
    pace: Pace,
    durations: dict[str, float],
    name: str,
    progress_interval: float,
) -> None:
    started = time.monotonic()
    simulate(
        db,
        project_id,
        generation_id,
        has_video=video,
        pace=pace,
        progress_interval=progress_interval,
    )
    durations[name] = time.monotonic() - started


def _report(
    say: Any,
    tally: Tally,
    arrivals: Arrivals,
    poll_counters: dict[str, RpcCounter],
    durations: dict[str, float],
) -> None:
    per_generation: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for (generation, kind), count in tally.writes.items():
        per_generation[generation][kind] = (count, tally.reads[(generation, kind)])
    say("Events and Firestore reads per generation (simulated, pace of `run`):")
    for name, (_, generation_id, _) in KINDS.items():
        rows = per_generation[generation_id]
        events = arrivals.of(generation_id)
        total_reads = sum(r for _, r in rows.values())
        polled = poll_counters[name].snapshot()
        polls = sum(v for k, v in polled.items() if k == "calls.BatchGetDocuments")
        say(f"  {name} ({generation_id}, {durations[name]:.0f} s): {len(events)} events")
        say(f"    {', '.join(events)}")
        for kind in sorted(rows):
            count, cost = rows[kind]
            say(f"    {kind:<20} {count:>3} writes, {cost:>3} reads ({cost / count:.1f} per write)")
        say(f"    event function, all writes: {total_reads} reads")
        say(f"    polling every {POLL_SECONDS:g} s: {polls} polls, {reads(polled)} reads")


if __name__ == "__main__":
    raise SystemExit(main())
