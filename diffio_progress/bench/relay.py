"""The relay's cost and throughput: billed reads per call, and draining a large backlog.

    python -m diffio_progress.bench.relay [--stored 10000] [--backlog 10000] [--callers 4]

cost: ``--stored`` delivered events (no ``dueAt``) in the webhooks database,
then a relay call with 0 due and one with 10 due; billed reads and RPCs are
counted on the wire (bench/rpc_count.py). throughput: ``--backlog`` due
deliveries (one event per generation, one endpoint, a receiver answering 204
at once), drained by one relay call at a time, then by ``--callers`` calls at
once; reports the time, calls, deliveries/s and duplicates. Loopback only.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from collections import Counter
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

from google.cloud import firestore

from diffio_progress.bench.rpc_count import RpcCounter, client_factory, reads, rpcs
from diffio_progress.core.deliveries import pair_endpoint_id, scheduled
from diffio_progress.core.errors import StoreUnavailable
from diffio_progress.core.events import QUEUED_EVENT, outbox_path
from diffio_progress.functions.firestore import FirestoreConnection
from diffio_progress.functions.webhooks.endpoint_store import new_signing_secret
from diffio_progress.tools.event_world import create_endpoint

from .event_world import PROJECT, bench_key, local_firestore, printer
from .faults import FlakyReceiver, ReceiverFaults
from .relay_world import bench_settings, build_relay, pending, quiet

BATCH_WRITES = 500


def seed_events(
    webhooks: firestore.Client, project: str, count: int, key_id: str | None, due: bool
) -> None:
    """``count`` queued events, one per generation: delivered, or due now to the key's endpoint."""
    now = datetime.now(UTC)
    endpoint = pair_endpoint_id(key_id or "", "live")
    for start in range(0, count, BATCH_WRITES):
        batch = webhooks.batch()
        for n in range(start, min(start + BATCH_WRITES, count)):
            generation = f"g{n:05d}"
            event_id = f"evt_{project}_{n:06d}"
            payload = {
                "eventType": QUEUED_EVENT,
                "eventId": event_id,
                "apiKeyId": key_id,
                "generationId": generation,
            }
            doc: dict[str, Any] = {
                "eventId": event_id,
                "eventType": QUEUED_EVENT,
                "payload": payload,
                "createdAt": now,
                "apiKeyId": key_id,
                "deliveries": {},
                "deliveryStatus": "delivered",
            }
            if due:
                doc.update(deliveries={endpoint: scheduled(now).to_map()}, dueAt=now)
                doc["deliveryStatus"] = "pending"
            batch.set(webhooks.document(*outbox_path(project, generation, QUEUED_EVENT)), doc)
        batch.commit()


def cost(db: firestore.Client, webhooks: firestore.Client, stored: int) -> list[str]:
    with ExitStack() as stack:
        key_id = bench_key(db)[1]
        receiver = FlakyReceiver(ReceiverFaults(), random.Random(1))
        stack.callback(receiver.stop)
        create_endpoint(db, key_id, receiver.url, new_signing_secret())
        seed_events(webhooks, "stored", stored, key_id, due=False)
        counter = RpcCounter()
        factory = client_factory(counter, PROJECT, "webhooks")
        relay = build_relay(bench_settings(), 2.0, FirestoreConnection(5.0, factory))
        quiet()
        rows = []
        for due in (0, 10):
            seed_events(webhooks, f"due{due}", due, key_id, due=True)
            counter.reset()
            answer = relay()
            counts = counter.snapshot()
            rows.append(
                f"| {stored:,} delivered, {due} due | {answer} | {reads(counts)} | {rpcs(counts)} |"
            )
        return rows


def drain(db: firestore.Client, webhooks: firestore.Client, backlog: int, callers: int) -> str:
    with ExitStack() as stack:
        key_id = bench_key(db)[1]
        receiver = FlakyReceiver(ReceiverFaults(), random.Random(2))
        stack.callback(receiver.stop)
        create_endpoint(db, key_id, receiver.url, new_signing_secret())
        project = f"drain{callers}"
        seed_events(webhooks, project, backlog, key_id, due=True)
        settings = bench_settings(firestore_timeout=10.0)
        relays = [build_relay(settings, 2.0) for _ in range(callers)]
        quiet()
        calls, failures = Counter[int](), Counter[int]()
        started = time.monotonic()
        done = threading.Event()

        def keep_calling(index: int) -> None:
            while not done.is_set():
                try:
                    if relays[index]()["due"] == 0 and not pending(webhooks):
                        done.set()
                except StoreUnavailable:
                    failures[index] += 1  # the emulator, loaded: the next call goes on
                calls[index] += 1

        threads = [threading.Thread(target=keep_calling, args=(i,)) for i in range(callers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.monotonic() - started
        ids = Counter(r.event_id for r in receiver.receipts)
        left = pending(webhooks)
        return (
            f"| {callers} at once | {backlog:,} | {seconds:.1f} s "
            f"| {sum(calls.values())} ({sum(failures.values())} failed) "
            f"| {len(ids) / seconds:.0f} | {len(ids):,} | {sum(n - 1 for n in ids.values())} "
            f"| {left} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffio_progress.bench.relay")
    parser.add_argument("--stored", type=int, default=10_000)
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--callers", type=int, default=4)
    args = parser.parse_args(argv)
    say = printer()
    with ExitStack() as stack:
        db = local_firestore(stack)
        webhooks = firestore.Client(project=PROJECT, database="webhooks")
        cost_rows = cost(db, webhooks, args.stored)
        drains = [drain(db, webhooks, args.backlog, n) for n in (1, args.callers)]
    say("| relay call | answer | billed reads | RPCs |")
    say("|---|---|---|---|")
    for row in cost_rows:
        say(row)
    say("")
    say(
        "| relay calls | due deliveries | drained in | calls | deliveries/s | delivered "
        "| duplicates | still pending |"
    )
    say("|---|---|---|---|---|---|---|---|")
    for row in drains:
        say(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
