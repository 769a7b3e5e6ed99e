"""Fault injection: do status events reach the client once, in order, whatever fails?

    python -m diffio_progress.bench.delivery [--generations 30] [--seed 1]   (about 2-3 minutes)

Per scenario, generations run their writes as a fast dispatcher and workers do
(the creation and the first job write within milliseconds), and each write's
CloudEvent goes to the real event handler (direct sink, several instances)
through an Eventarc stand-in: at least once, sometimes twice, retried with
backoff; the relay runs beside them on a short period, on the default retry
schedule scaled down 10,000 times (bench/relay_world.py). Faults: a receiver
that is slow, answers 500 or is down; calls killed between claim and send; the
event function's Firestore link cut for seconds.
Reported per scenario: generations, events recorded, delivered, lost (recorded,
never delivered), duplicates (one eventId twice at the endpoint), out of order,
and p50/p99 from the write that changed the status to the delivery. Loopback only.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from cloudevents.http import from_http
from google.cloud import firestore

from diffio_progress.core import paths
from diffio_progress.functions.clock import utcnow
from diffio_progress.functions.events.delivery import Deliverer
from diffio_progress.functions.events.handler import EventHandler
from diffio_progress.functions.events.marks import Marker
from diffio_progress.functions.events.pinned_post import PinnedPoster
from diffio_progress.functions.events.wiring import build_event_handler
from diffio_progress.functions.firestore import FirestoreConnection
from diffio_progress.functions.webhooks.endpoint_store import new_signing_secret
from diffio_progress.tools.cloud_events import written_event
from diffio_progress.tools.event_world import create_endpoint

from .delivery_tally import Run, tally
from .event_world import PROJECT, USER, bench_key, local_firestore, printer
from .faults import Eventarc, FlakyReceiver, KillingSink, LinkProxy, ReceiverFaults
from .relay_world import RelayLoop, bench_settings, build_relay, pending, quiet

DEADLINE_SECONDS = 2.0  # each delivery's (the deployed default is 10 s)
LEASE_MARGIN_SECONDS = 2.0  # the deployed margin is 20 s; the bench waits leases out
INSTANCES = 4
MAX_AGE_SECONDS = 60.0  # Eventarc gives up on an event after this (deployed: 23 h)


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


def call(handler: EventHandler, event: Any) -> None:
    handler(from_http(*event))


def proxied_client(host_port: str, database: str = "(default)") -> firestore.Client:
    client = firestore.Client(project=PROJECT, database=database)
    client._emulator_host = host_port  # the channel is made on first use, through the proxy
    return client


def handlers(
    scenario: Scenario, db_host: str, rng: random.Random, stack: ExitStack
) -> tuple[list[EventHandler], LinkProxy | None, list[KillingSink]]:
    proxy = LinkProxy(db_host) if scenario.outage else None
    settings = bench_settings()
    built, killers = [], []
    for _ in range(INSTANCES):
        factory = (lambda: proxied_client(proxy.host_port)) if proxy else None
        hooks = (lambda: proxied_client(proxy.host_port, "webhooks")) if proxy else None
        connection = FirestoreConnection(3.0, factory, project=PROJECT)
        webhooks = FirestoreConnection(3.0, hooks, project=PROJECT, database="webhooks")
        poster = PinnedPoster(allow_private=True, deadline_seconds=DEADLINE_SECONDS)
        handler = build_event_handler(settings, connection, poster, webhooks)
        assert handler.sink is not None
        killer = KillingSink(handler.sink, scenario.kill, random.Random(rng.random()))
        handler.sink = killer
        marker = Marker(handler.outbox.connection, settings.webhook_log_days)
        handler.deliverer = Deliverer(
            handler.outbox,
            killer,
            marker,
            settings.retry_schedule,
            utcnow,
            lease_margin_seconds=LEASE_MARGIN_SECONDS,
        )
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
        relay = RelayLoop(build_relay(bench_settings(), DEADLINE_SECONDS)).start()
        quiet()
        stack.callback(relay.stop)
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
        webhooks = firestore.Client(project=PROJECT, database="webhooks")
        drained = time.monotonic() + 60
        while pending(webhooks) and time.monotonic() < drained:
            time.sleep(0.5)  # what is still scheduled, the relay sends
        relay.stop()
        return tally(webhooks, project, generations, receiver, run) | {
            "relayed": relay.totals["delivered"],
            "calls": eventarc.calls,
            "failedCalls": eventarc.failed_calls,
            "givenUp": eventarc.given_up,
            "killed": sum(k.killed for k in killers),
            "seconds": time.monotonic() - started,
        }


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
        "| out of order | p50 | p99 | calls (failed) | killed | given up | by the relay |"
    )
    say("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        say(
            f"| {name} | {r['generations']} | {r['ended']} | {r['recorded']} | {r['delivered']} "
            f"| {r['lost']} | {r['duplicates']} | {r['outOfOrder']} | {r['p50'] * 1000:.0f} ms "
            f"| {r['p99'] * 1000:.0f} ms | {r['calls']} ({r['failedCalls']}) | {r['killed']} "
            f"| {r['givenUp']} | {r['relayed']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
