"""`python -m diffio_progress.bench.recovery`: a 410, configure, recover: does everything arrive?

    python -m diffio_progress.bench.recovery [--generations 20] [--repeat 3]

The whole loop of delivery-contract.md §3 and §5 on compressed time: the endpoint
answers 410 Gone, so it is disabled at once and every later event is skipped while
generations race through the event function (4 instances, duplicate CloudEvents);
then the client configures it again (enabled, nothing sent yet) and calls
``recover`` for the window (the log's own code), and the relay (called every
0.25 s) sends what was failed or skipped. Reported: recorded, skipped or failed
before the recover, recovered, delivered, lost, duplicates, out of order, and the
time from the recover call to the last delivery. Loopback only.
"""

from __future__ import annotations

import argparse
import random
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

from google.cloud import firestore

from diffio_progress.core.log_requests import RecoverRequest
from diffio_progress.functions.events.pinned_post import PinnedPoster
from diffio_progress.functions.firestore import FirestoreConnection
from diffio_progress.functions.webhooks.endpoint_store import EndpointStore, new_signing_secret
from diffio_progress.functions.webhooks.sinks import DirectWebhooks
from diffio_progress.functions.webhooks.wiring import build_direct_log
from diffio_progress.tools.event_world import create_endpoint, secret_box_from_env

from .delivery import DEADLINE_SECONDS
from .delivery_tally import Run, tally
from .event_world import PROJECT, bench_key, local_firestore, printer
from .faults import FlakyReceiver, ReceiverFaults
from .outage import generations_race
from .relay_world import RelayLoop, bench_settings, build_relay, pending, quiet


def statuses(webhooks: firestore.Client, project: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for snapshot in webhooks.collection_group("events").get():
        if snapshot.reference.path.split("/")[1] == project:
            status = (snapshot.to_dict() or {}).get("deliveryStatus", "?")
            found[status] = found.get(status, 0) + 1
    return found


def settle(webhooks: firestore.Client, seconds: float) -> None:
    """Until nothing is pending (the relay has nothing left to do), at most ``seconds``."""
    ends = time.monotonic() + seconds
    while pending(webhooks) and time.monotonic() < ends:
        time.sleep(0.05)


def loop(db: firestore.Client, count: int, project: str) -> dict[str, Any]:
    webhooks = firestore.Client(project=PROJECT, database="webhooks")
    settings = bench_settings()
    with ExitStack() as stack:
        key_id = bench_key(db)[1]
        faults = ReceiverFaults(gone=True)
        receiver = FlakyReceiver(faults, random.Random(3))
        stack.callback(receiver.stop)
        secret = new_signing_secret()
        endpoint_id = create_endpoint(db, key_id, receiver.url, secret).endpoint_id
        relay = RelayLoop(build_relay(settings, DEADLINE_SECONDS)).start()
        stack.callback(relay.stop)
        quiet()
        since = datetime.now(UTC) - timedelta(seconds=1)
        run = Run()
        names = generations_race(db, stack, key_id, project, count, run)
        settle(webhooks, 30)
        endpoint = webhooks.document("webhookEndpoints", endpoint_id).get().to_dict() or {}
        before = statuses(webhooks, project)
        faults.gone = False
        create_endpoint(db, key_id, receiver.url, secret)  # the client configures it again
        nothing_yet = len(receiver.receipts)
        connection = FirestoreConnection(3.0, project=PROJECT, database=settings.webhook_database)
        sink = DirectWebhooks(
            EndpointStore(connection, secret_box_from_env()),
            PinnedPoster(allow_private=True),
            new_signing_secret,
        )
        log = build_direct_log(settings, sink)
        started = time.monotonic()
        answer = log.recover(RecoverRequest("live", since), key_id, datetime.now(UTC))
        settle(webhooks, 60)
        relay.stop()
        result = tally(webhooks, project, names, receiver, run)
        last = max((r.at for r in receiver.receipts), default=started)
        return result | {
            "disabled": f"{endpoint.get('disabled')} ({endpoint.get('disabledReason')})",
            "before": before,
            "sentBeforeRecover": nothing_yet,
            "recovered": answer["recovered"],
            "after": statuses(webhooks, project),
            "toRecover": last - started,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffio_progress.bench.recovery")
    parser.add_argument("--generations", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    say = printer()
    with ExitStack() as stack:
        db = local_firestore(stack)
        rows = [loop(db, args.generations, f"rec{n}") for n in range(args.repeat)]
    say(
        "| run | generations | recorded | endpoint after the 410 | before recover | delivered "
        "before | recovered | delivered | lost | duplicates | out of order | after "
        "| recover -> last delivery |"
    )
    say("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n, r in enumerate(rows):
        say(
            f"| {n + 1} | {r['generations']} | {r['recorded']} | disabled: {r['disabled']} "
            f"| {r['before']} | {r['sentBeforeRecover']} | {r['recovered']} | {r['delivered']} "
            f"| {r['lost']} | {r['duplicates']} | {r['outOfOrder']} | {r['after']} "
            f"| {r['toRecover']:.2f} s |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
