"""A client's endpoint down for days, on compressed time: is anything lost, and what then?

    python -m diffio_progress.bench.outage [--generations 30] [--hours 60 --hours 72]

The default retry schedule scaled down 10,000 times (an hour is 0.36 s) and the
relay called every 0.25 s. The endpoint goes down, 30 generations race through
the event function (4 instances, duplicate CloudEvents) and the endpoint comes
back after ``--hours`` (scaled). Reported: recorded, delivered, lost, failed for
good (the schedule ran out: visible, recoverable by issue 24's recover), duplicates,
out of order, attempts per delivery against the schedule, and the time from the
endpoint's return to the last delivery. Then a 410 endpoint: disabled, skipped,
configured again. Loopback only; the table only, no log lines.
"""

from __future__ import annotations

import argparse
import random
import statistics
import threading
import time
from contextlib import ExitStack
from functools import partial
from typing import Any

from google.cloud import firestore

from diffio_progress.core import paths
from diffio_progress.functions.webhooks.endpoint_store import new_signing_secret
from diffio_progress.tools.event_world import create_endpoint

from .delivery import DEADLINE_SECONDS, Scenario, call, handlers, lifecycle
from .delivery_tally import Run, tally
from .event_world import PROJECT, USER, bench_key, local_firestore, printer
from .faults import Eventarc, FlakyReceiver, ReceiverFaults
from .relay_world import (
    SCALE,
    SCHEDULE,
    RelayLoop,
    attempts_by_event,
    bench_settings,
    build_relay,
    pending,
    quiet,
    schedule_kept,
)


def generations_race(
    db: firestore.Client, stack: ExitStack, key_id: str, project: str, count: int, run: Run
) -> list[str]:
    """``count`` generations through 4 event function instances; their ids once all ran."""
    built, _, _ = handlers(Scenario("outage", duplicates=0.3), "", random.Random(7), stack)
    eventarc = Eventarc([partial(call, h) for h in built], random.Random(8), 0.3, 600.0)
    db.document(*paths.project(project)).set({"userId": USER, "hasVideo": False})
    names = [f"{project}-g{n:03d}" for n in range(count)]
    workers = []
    for n, generation in enumerate(names):
        args = (db, project, generation, key_id, n % 5 == 4, eventarc.emit, run)
        workers.append(threading.Thread(target=lifecycle, args=args))
        workers[-1].start()
        time.sleep(0.05)
    for worker in workers:
        worker.join()
    eventarc.wait()
    return names


def outage(db: firestore.Client, hours: float, count: int) -> dict[str, Any]:
    """The endpoint down for ``hours`` (scaled) from before the first generation starts."""
    webhooks = firestore.Client(project=PROJECT, database="webhooks")
    with ExitStack() as stack:
        key_id = bench_key(db)[1]
        faults = ReceiverFaults()
        receiver = FlakyReceiver(faults, random.Random(1))
        stack.callback(receiver.stop)
        create_endpoint(db, key_id, receiver.url, new_signing_secret())
        relay = RelayLoop(build_relay(bench_settings(), DEADLINE_SECONDS)).start()
        stack.callback(relay.stop)
        quiet()
        down = hours * 3600 / SCALE
        started = time.monotonic()
        faults.down.append((started, started + down))
        run = Run()
        project = f"out{int(hours)}"
        names = generations_race(db, stack, key_id, project, count, run)
        back = started + down
        while time.monotonic() < back + 60 and (time.monotonic() < back or pending(webhooks)):
            time.sleep(0.2)
        relay.stop()
        result = tally(webhooks, project, names, receiver, run)
        events = {
            (s.to_dict() or {}).get("eventId"): s.to_dict() or {}
            for s in webhooks.collection_group("events").get()
            if s.reference.path.split("/")[1] == project
        }
        attempts = {e: t for e, t in attempts_by_event(webhooks).items() if e in events}
        counts = [len(t) for t in attempts.values()]
        last = max((r.at for r in receiver.receipts), default=back)
        failed = sum(1 for e in events.values() if e.get("deliveryStatus") == "failed")
        return result | {
            "hours": hours,
            "failedForGood": failed,
            "attemptsMean": statistics.mean(counts) if counts else 0.0,
            "attemptsMax": max(counts, default=0),
            "scheduleKept": sum(schedule_kept(t, SCHEDULE) for t in attempts.values()),
            "deliveries": len(attempts),
            "returnToLast": last - back,
        }


def gone(db: firestore.Client, count: int) -> dict[str, Any]:
    """A 410 endpoint: disabled at once, later events skipped, configure enables it again."""
    webhooks = firestore.Client(project=PROJECT, database="webhooks")
    with ExitStack() as stack:
        key_id = bench_key(db)[1]
        faults = ReceiverFaults(gone=True)
        receiver = FlakyReceiver(faults, random.Random(2))
        stack.callback(receiver.stop)
        secret = new_signing_secret()
        endpoint = create_endpoint(db, key_id, receiver.url, secret).endpoint_id
        relay = RelayLoop(build_relay(bench_settings(), DEADLINE_SECONDS)).start()
        stack.callback(relay.stop)
        quiet()
        before = generations_race(db, stack, key_id, "gone1", count, Run())
        state = webhooks.document("webhookEndpoints", endpoint).get().to_dict() or {}
        faults.gone = False
        create_endpoint(db, key_id, receiver.url, secret)  # the client configures it again
        enabled = webhooks.document("webhookEndpoints", endpoint).get().to_dict() or {}
        after = generations_race(db, stack, key_id, "gone2", count, Run())
        drained = time.monotonic() + 30
        while pending(webhooks) and time.monotonic() < drained:
            time.sleep(0.2)
        statuses: dict[str, dict[str, int]] = {"gone1": {}, "gone2": {}}
        for snapshot in webhooks.collection_group("events").get():
            project = snapshot.reference.path.split("/")[1]
            status = (snapshot.to_dict() or {}).get("deliveryStatus", "?")
            if project in statuses:
                statuses[project][status] = statuses[project].get(status, 0) + 1
        return {
            "generations": len(before) + len(after),
            "disabled": f"{state.get('disabled')} ({state.get('disabledReason')})",
            "whileGone": statuses["gone1"],
            "enabledAgain": enabled.get("disabled") is False,
            "afterConfigure": statuses["gone2"],
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffio_progress.bench.outage")
    parser.add_argument("--generations", type=int, default=30)
    parser.add_argument("--hours", type=float, action="append")
    args = parser.parse_args(argv)
    say = printer()
    with ExitStack() as stack:
        db = local_firestore(stack)
        rows = [outage(db, hours, args.generations) for hours in args.hours or [60.0, 72.0]]
        lost = gone(db, max(args.generations // 3, 2))
    say(
        "| endpoint down | generations | recorded | delivered | lost | failed for good "
        "| duplicates | out of order | attempts per delivery (mean / max, schedule allows 11) "
        "| deliveries that kept the schedule | endpoint back -> last delivery |"
    )
    say("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        say(
            f"| {r['hours']:g} h (scaled: {r['hours'] * 3600 / SCALE:.1f} s) | {r['generations']} "
            f"| {r['recorded']} | {r['delivered']} | {r['lost']} | {r['failedForGood']} "
            f"| {r['duplicates']} | {r['outOfOrder']} | {r['attemptsMean']:.1f} / "
            f"{r['attemptsMax']} | {r['scheduleKept']}/{r['deliveries']} "
            f"| {r['returnToLast']:.2f} s ({r['returnToLast'] * SCALE / 3600:.1f} h scaled up) |"
        )
    say("")
    say("| 410 endpoint | generations | endpoint | deliveries while gone | configure | after |")
    say("|---|---|---|---|---|---|")
    say(
        f"| answers 410 | {lost['generations']} | disabled: {lost['disabled']} "
        f"| {lost['whileGone']} | enabled again: {lost['enabledAgain']} "
        f"| {lost['afterConfigure']} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
