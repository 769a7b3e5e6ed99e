"""Fault injection: do status events reach the client once, in order, whatever fails?

    python -m diffio_progress.bench.delivery [--generations 30] [--seed 1]   (about 2-3 minutes)

Per scenario, generations run their writes as a fast dispatcher and workers do
(the creation and the first job write within milliseconds), and each write's
CloudEvent goes to the real event handler (direct sink, several instances)
through an Eventarc stand-in: at least once, sometimes twice, retried with
backoff. Faults: a receiver that is slow, answers 500 or is down; calls killed
between claim and send; the event function's Firestore link cut for seconds.
Reported per scenario: generations, events recorded, delivered, lost (recorded,
never delivered), duplicates (one eventId twice at the endpoint), out of order,
and p50/p99 from the write that changed the status to the delivery. Loopback only.
"""

from __future__ import annotations

import argparse
import random
import statistics
import threading
import time
from collections import Counter, defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from cloudevents.http import from_http
from google.cloud import firestore

from diffio_progress.core import paths
from diffio_progress.core.events import RANKS
from diffio_progress.functions.config import Settings
from diffio_progress.functions.events.delivery import Deliverer
from diffio_progress.functions.events.handler import EventHandler
from diffio_progress.functions.events.pinned_post import PinnedPoster
from diffio_progress.functions.events.wiring import build_event_handler
from diffio_progress.functions.firestore import FirestoreConnection
from diffio_progress.functions.webhooks.endpoint_store import new_signing_secret
from diffio_progress.tools.cloud_events import written_event
from diffio_progress.tools.event_world import create_endpoint

from .event_world import PROJECT, USER, bench_key, local_firestore, printer
from .faults import Eventarc, FlakyReceiver, KillingSink, LinkProxy, Receipt, ReceiverFaults

DEADLINE_SECONDS = 2.0  # each delivery's (the deployed default is 10 s)
LEASE_MARGIN_SECONDS = 2.0  # the deployed margin is 20 s; the bench waits leases out
INSTANCES = 4
MAX_AGE_SECONDS = 60.0  # Eventarc gives up on an event after this (deployed: 24 h)


@dataclass
class Scenario:
    name: str
    receiver: ReceiverFaults = field(default_factory=ReceiverFaults)
    kill: float = 0.0
    duplicates: float = 0.3
    outage: tuple[float, float] | None = None  # (after, seconds): the link is cut
    receiver_down: tuple[float, float] | None = None  # (after, seconds)


SCENARIOS = [
    Scenario("nothing fails (racing writes, duplicate CloudEvents)"),
    Scenario("receiver slow 10% / 500 15% / down 3 s", ReceiverFaults(slow=0.1, errors=0.15)),
    Scenario("calls killed between claim and send (20%)", kill=0.2),
    Scenario("Firestore link cut for 4 s", outage=(2.0, 4.0)),
]
SCENARIOS[1].receiver_down = (2.0, 3.0)


@dataclass
class Run:
    """What one scenario wrote and when: (generation, event type) -> the write's time."""

    marks: dict[tuple[str, str], float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def mark(self, generation: str, event_type: str) -> None:
        with self.lock:
            self.marks.setdefault((generation, event_type), time.monotonic())


def call(handler: EventHandler, event: Any) -> None:
    handler(from_http(*event))


def proxied_client(host_port: str) -> firestore.Client:
    client = firestore.Client(project=PROJECT)
    client._emulator_host = host_port  # the channel is made on first use, through the proxy
    return client


def handlers(
    scenario: Scenario, db_host: str, rng: random.Random, stack: ExitStack
) -> tuple[list[EventHandler], LinkProxy | None, list[KillingSink]]:
    proxy = LinkProxy(db_host) if scenario.outage else None
    settings = Settings(
        project=PROJECT,
        webhook_sink="direct",
        webhook_allow_private_urls=True,
        firestore_timeout=3.0,
    )
    built, killers = [], []
    for _ in range(INSTANCES):
        factory = (lambda: proxied_client(proxy.host_port)) if proxy else None
        connection = FirestoreConnection(3.0, factory, project=PROJECT)
        poster = PinnedPoster(allow_private=True, deadline_seconds=DEADLINE_SECONDS)
        handler = build_event_handler(settings, connection, poster)
        assert handler.sink is not None
        killer = KillingSink(handler.sink, scenario.kill, random.Random(rng.random()))
        handler.sink = killer
        handler.deliverer = Deliverer(handler.outbox, killer, LEASE_MARGIN_SECONDS)
        stack.callback(handler.close)
        built.append(handler)
        killers.append(killer)
    return built, proxy, killers


def lifecycle(
    db: firestore.Client,
    project: str,
    generation: str,
    key_id: str,
    fail: bool,
    emit: Any,
    run: Run,
) -> None:
    """One generation's writes, each followed by its CloudEvent."""
    rng = random.Random(generation)
    docs: dict[str, dict[str, Any] | None] = {}

    def write(path: paths.DocPath, doc: dict[str, Any]) -> None:
        key = "/".join(path)
        db.document(*path).set(doc)
        emit(written_event(PROJECT, key, docs.get(key), doc))
        docs[key] = doc

    def job(stage: str, status: str, progress: float, **extra: Any) -> None:
        write(
            paths.job(project, generation, stage),
            {"status": status, "progress": progress, **extra},
        )

    base = {"generationId": generation, "apiProjectId": project, "userId": USER}
    write(paths.generation(project, generation), {**base, "apiKeyId": key_id})
    run.mark(generation, "generation.queued")
    job("preProcessing", "running", 0)  # a fast dispatcher: within milliseconds
    run.mark(generation, "generation.processing")
    for percent in (30, 60):
        time.sleep(rng.uniform(0.05, 0.2))
        job("preProcessing", "running", percent)
    job("preProcessing", "complete", 100)
    time.sleep(rng.uniform(0.05, 0.3))
    job("inference", "running", 10)
    time.sleep(rng.uniform(0.1, 0.5))
    if fail:
        job("inference", "failed", 40, error="Inference failed")
        run.mark(generation, "generation.failed")
    else:
        job("inference", "complete", 100)
        run.mark(generation, "generation.completed")


def run_scenario(
    scenario: Scenario, db: firestore.Client, db_host: str, count: int, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    run = Run()
    with ExitStack() as stack:
        key_id = bench_key(db)[1]
        receiver = FlakyReceiver(scenario.receiver, random.Random(seed + 1))
        stack.callback(receiver.stop)
        create_endpoint(db, key_id, receiver.url, new_signing_secret())
        built, proxy, killers = handlers(scenario, db_host, rng, stack)
        calls = [partial(call, h) for h in built]
        eventarc = Eventarc(calls, random.Random(seed + 2), scenario.duplicates, MAX_AGE_SECONDS)
        project = f"p-{seed}"
        db.document(*paths.project(project)).set({"userId": USER, "hasVideo": False})
        started = time.monotonic()
        if scenario.receiver_down:
            after, seconds = scenario.receiver_down
            scenario.receiver.down.append((started + after, started + after + seconds))
        if proxy is not None and scenario.outage:
            after, seconds = scenario.outage
            threading.Timer(after, proxy.cut, args=(seconds,)).start()
        generations = [f"g{seed}-{n:03d}" for n in range(count)]
        workers = []
        for n, generation in enumerate(generations):
            fail = n % 5 == 4
            args = (db, project, generation, key_id, fail, eventarc.emit, run)
            workers.append(threading.Thread(target=lifecycle, args=args))
            workers[-1].start()
            time.sleep(0.1)
        for worker in workers:
            worker.join()
        eventarc.wait()
        return tally(db, project, generations, receiver, run) | {
            "calls": eventarc.calls,
            "failedCalls": eventarc.failed_calls,
            "givenUp": eventarc.given_up,
            "killed": sum(k.killed for k in killers),
            "seconds": time.monotonic() - started,
        }


def tally(
    db: firestore.Client,
    project: str,
    generations: list[str],
    receiver: FlakyReceiver,
    run: Run,
) -> dict[str, Any]:
    receipts = sorted(receiver.receipts, key=lambda r: r.at)
    copies = Counter(r.event_id for r in receipts)
    first: dict[str, Receipt] = {}
    for receipt in receipts:
        first.setdefault(receipt.event_id, receipt)
    recorded = lost = out_of_order = ended = 0
    latencies = []
    for generation in generations:
        outbox = db.document(*paths.generation(project, generation)).collection("events").get()
        events = {s.id: (s.to_dict() or {}).get("eventId") for s in outbox}
        recorded += len(events)
        ended += bool({"generation.completed", "generation.failed"} & set(events))
        lost += sum(1 for event_id in events.values() if event_id not in first)
        seen = sorted(
            (r for r in first.values() if r.generation_id == generation), key=lambda r: r.at
        )
        ranks = [RANKS[r.event_type] for r in seen]
        out_of_order += sum(1 for a, b in zip(ranks, ranks[1:], strict=False) if b < a)
        for receipt in seen:
            written = run.marks.get((generation, receipt.event_type))
            if written is not None:
                latencies.append(receipt.at - written)
    return {
        "generations": len(generations),
        "ended": ended,
        "recorded": recorded,
        "delivered": len(first),
        "lost": lost,
        "duplicates": sum(n - 1 for n in copies.values()),
        "outOfOrder": out_of_order,
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p99": percentile(latencies, 0.99),
    }


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffio_progress.bench.delivery")
    parser.add_argument("--generations", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    say = printer()
    results: dict[str, dict[str, Any]] = defaultdict(dict)
    with ExitStack() as stack:
        db = local_firestore(stack)
        db_host = str(db._emulator_host)
        say("warming up (svix, connections, the emulator) ...")
        run_scenario(Scenario("warm-up"), db, db_host, 5, 0)
        for n, scenario in enumerate(SCENARIOS):
            say(f"scenario: {scenario.name} ...")
            results[scenario.name] = run_scenario(
                scenario, db, db_host, args.generations, args.seed * 100 + n
            )
    say(
        "| scenario | generations | ended | recorded | delivered | lost | duplicates "
        "| out of order | p50 | p99 | calls (failed) | killed | given up |"
    )
    say("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        say(
            f"| {name} | {r['generations']} | {r['ended']} | {r['recorded']} | {r['delivered']} "
            f"| {r['lost']} | {r['duplicates']} | {r['outOfOrder']} | {r['p50'] * 1000:.0f} ms "
            f"| {r['p99'] * 1000:.0f} ms | {r['calls']} ({r['failedCalls']}) | {r['killed']} "
            f"| {r['givenUp']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
