"""`python -m diffio_progress.bench.webhooks`: the webhooks API's latency beside the poll's.

Every path served behind one address, as the local world serves them
(direct sink, a verifying receiver on loopback). Each round makes, one after
another: a first configure of a new key (create), a configure of one key that
has its endpoint (update), a test event to the receiver, the delivery log's
four calls (a page of 50 events, one event's attempts, a recover of the last
hour, a resend), and a progress poll. Also the time from sending a test event
to the receiver's verified delivery, and the billed reads of a log page of 50
and of 100 and of ``list_attempts``, counted on the wire.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from diffio_progress.core.events import EVENT_TYPES
from diffio_progress.tools import keys
from diffio_progress.tools.webhook_receiver import WebhookReceiver

from .event_world import PROJECT, local_firestore, printer
from .harness import ROOT, seed, served

KINDS = (
    "configure (create)",
    "configure (update)",
    "send_test_event",
    "list_events (50)",
    "list_attempts",
    "recover",
    "resend",
    "progress poll",
)
LOG_KINDS = {"list_events (50)": "list_events", "list_attempts": "list_attempts"}
LOG_KINDS |= {"recover": "recover", "resend": "resend"}


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return f"p50 {statistics.median(ordered) * 1000:6.1f} ms  p99 {p99 * 1000:6.1f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffio_progress.bench.webhooks")
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args(argv)
    say = printer()
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    verified: dict[str, float] = {}
    sent_at: dict[str, float] = {}
    lock = threading.Lock()
    with ExitStack() as stack:
        db = local_firestore(stack)
        [generation] = seed(db, 1, "wh")
        now = datetime.now(UTC)
        writers = [
            keys.create_key(db, user_id="user-a", now=now, webhooks_write=True)
            for _ in range(args.rounds + 1)
        ]

        def on_event(event: Any, at: datetime) -> None:
            with lock:
                verified[event.eventId] = time.perf_counter()

        receiver = WebhookReceiver("whsec_unset", on_event, say).start()
        stack.callback(receiver.stop)
        env = {
            "WEBHOOK_SINK": "direct",
            "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
            "KEY_RATE_LIMIT_PER_SECOND": "0",
        }
        url, _ = stack.enter_context(served(None, ROOT / "main.py", env))
        client = stack.enter_context(httpx.Client(base_url=f"{url}/v1", timeout=30))
        body = {"mode": "live", "url": receiver.url, "eventTypes": list(EVENT_TYPES)}

        def post(kind: str | None, path: str, key: str, payload: dict[str, Any]) -> Any:
            started = time.perf_counter()
            response = client.post(path, json=payload, headers={"Authorization": f"Bearer {key}"})
            if kind is not None:
                times[kind].append(time.perf_counter() - started)
            response.raise_for_status()
            return response.json(), started

        main_key = writers[0].key
        answer, _ = post(None, "/webhooks/configure", main_key, body)
        receiver.use_secret(answer["webhook"]["signingSecret"])
        test_event = {"eventType": "generation.completed", "mode": "live"}
        poll = {"generationId": generation.generation_id, "apiProjectId": generation.project_id}
        post(None, "/webhooks/send_test_event", main_key, test_event)  # warm-up: imports
        post(None, "/get_generation_progress", generation.key, poll)
        for i in range(args.rounds):
            post(KINDS[0], "/webhooks/configure", writers[i + 1].key, body)
            post(KINDS[1], "/webhooks/configure", main_key, body)
            sent, started = post(KINDS[2], "/webhooks/send_test_event", main_key, test_event)
            sent_at[sent["eventId"]] = started
            event = {"eventId": sent["eventId"]}
            since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
            bodies = {"list_events": {"limit": 50}, "list_attempts": event}
            bodies |= {"recover": {"mode": "live", "since": since}, "resend": event}
            for kind, name in LOG_KINDS.items():
                post(kind, f"/webhooks/{name}", main_key, bodies[name])
            post(KINDS[-1], "/get_generation_progress", generation.key, poll)
        reads = log_reads(writers[0].key_id, next(iter(sent_at)))
    delays = [verified[e] - s for e, s in sent_at.items() if e in verified]
    say(f"Webhooks API beside the poll, {args.rounds} rounds, one request at a time (loopback):")
    for kind in KINDS:
        say(f"  {kind:<20} {percentiles(times[kind])}")
    say(f"  send -> verified     {percentiles(delays)} ({len(delays)}/{len(sent_at)} verified)")
    say("Billed reads of the delivery log (webhooks database; the caller's key read apart):")
    for name, count in reads.items():
        say(f"  {name:<20} {count}")
    return 0


def log_reads(key_id: str, event_id: str) -> dict[str, int]:
    """Billed reads of one list_events page of 50 and of 100 (of the key's test events, more
    than 100 by now) and of list_attempts, through the log's own code, counted on the wire."""
    from diffio_progress.core.log_requests import parse_event_request, parse_list_events
    from diffio_progress.functions.config import WEBHOOK_SECRETS_LOCAL_KEY, Settings
    from diffio_progress.functions.events.pinned_post import PinnedPoster
    from diffio_progress.functions.firestore import FirestoreConnection
    from diffio_progress.functions.secret_box import build_secret_box
    from diffio_progress.functions.webhooks.endpoint_store import EndpointStore, new_signing_secret
    from diffio_progress.functions.webhooks.sinks import DirectWebhooks
    from diffio_progress.functions.webhooks.wiring import build_direct_log

    from .rpc_count import RpcCounter, client_factory
    from .rpc_count import reads as billed

    counter = RpcCounter()
    settings = Settings.from_env(
        {
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "WEBHOOK_SINK": "direct",
            WEBHOOK_SECRETS_LOCAL_KEY: os.environ[WEBHOOK_SECRETS_LOCAL_KEY],
        }
    )
    factory = client_factory(counter, PROJECT, settings.webhook_database)
    connection = FirestoreConnection(5.0, factory, database=settings.webhook_database)
    store = EndpointStore(connection, build_secret_box(settings))
    sink = DirectWebhooks(store, PinnedPoster(), new_signing_secret)
    log = build_direct_log(settings, sink)
    now = datetime.now(UTC)
    found: dict[str, int] = {}
    for limit in (50, 100):
        counter.reset()
        page = log.list_events(parse_list_events({"limit": limit}), key_id, now)
        found[f"list_events ({len(page['events'])})"] = billed(counter.snapshot())
    counter.reset()
    attempts = log.list_attempts(parse_event_request({"eventId": event_id}), key_id, now)
    found[f"list_attempts ({len(attempts['attempts'])})"] = billed(counter.snapshot())
    return found


if __name__ == "__main__":
    raise SystemExit(main())
