"""The benchmarks' relay: scaled time, the relay called on a short period, attempts read back.

Time is compressed by ``SCALE`` (the default schedule divided by 10,000: 5 s becomes 0.5 ms,
12 h becomes 4.3 s); the relay is called every ``PERIOD`` seconds, as Cloud Scheduler calls it
every minute. What each delivery's attempts were is read from ``webhookAttempts``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from google.cloud import firestore

from diffio_progress.core.retry_schedule import DEFAULT_SCHEDULE, parse_schedule, scaled
from diffio_progress.functions import logs
from diffio_progress.functions.config import WEBHOOK_SECRETS_LOCAL_KEY, Settings
from diffio_progress.functions.events.pinned_post import PinnedPoster
from diffio_progress.functions.firestore import FirestoreConnection
from diffio_progress.functions.relay.handler import build_relay_handler
from diffio_progress.functions.relay.relay import Relay

from .event_world import PROJECT

SCALE = 10_000.0
PERIOD = 0.25  # seconds between relay calls (deployed: a minute)
SCHEDULE = scaled(parse_schedule(DEFAULT_SCHEDULE), SCALE)


def quiet() -> None:
    """The functions' log lines stay out of a benchmark's table (after they were configured)."""
    logs.configure()
    logging.getLogger(logs.LOGGER_NAME).setLevel(logging.CRITICAL)


def bench_settings(**overrides: Any) -> Settings:
    """The direct sink on loopback, the default schedule scaled down by ``SCALE``."""
    fields: dict[str, Any] = {
        "project": PROJECT,
        "webhook_sink": "direct",
        "webhook_allow_private_urls": True,
        "firestore_timeout": 3.0,
        "retry_schedule": SCHEDULE,
        "webhook_disable_after_hours": 120 / SCALE,
        # The key the bench's endpoints are sealed with (bench/__init__.py makes it).
        "webhook_secrets_local_key": os.environ.get(WEBHOOK_SECRETS_LOCAL_KEY, ""),
        **overrides,
    }
    return Settings(**fields)


def build_relay(settings: Settings, deadline: float, connection: Any = None) -> Relay:
    webhooks = connection or FirestoreConnection(
        3.0, project=PROJECT, database=settings.webhook_database
    )
    poster = PinnedPoster(allow_private=True, deadline_seconds=deadline)
    return build_relay_handler(settings, webhooks, poster).relay


@dataclass
class RelayLoop:
    """Calls the relay every ``period`` seconds on a thread, as Cloud Scheduler would."""

    relay: Relay
    period: float = PERIOD
    calls: int = 0
    totals: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> RelayLoop:
        self._thread = threading.Thread(target=self._run, name="relay-loop", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                counts = self.relay()
            except Exception:  # an outage: the next call finds what is still due
                continue
            self.calls += 1
            for name, value in counts.items():
                self.totals[name] += value


def pending(webhooks: firestore.Client) -> int:
    """Events with a delivery still pending (they carry ``dueAt``)."""
    query = webhooks.collection_group("events").where(
        filter=firestore.FieldFilter("dueAt", ">", datetime(2000, 1, 1))
    )
    return len(query.get())


def attempts_by_event(webhooks: firestore.Client) -> dict[str, list[datetime]]:
    found: dict[str, list[datetime]] = defaultdict(list)
    for snapshot in webhooks.collection("webhookAttempts").get():
        attempt = snapshot.to_dict() or {}
        found[attempt["eventId"]].append(attempt["at"])
    return {k: sorted(v) for k, v in found.items()}


def schedule_kept(times: list[datetime], schedule: tuple[timedelta, ...]) -> bool:
    """Each attempt after the first came no earlier than its schedule entry allowed."""
    slack = timedelta(milliseconds=5)  # the stored times' own rounding
    return (
        all(
            later - earlier + slack >= schedule[n]
            for n, (earlier, later) in enumerate(zip(times, times[1:], strict=False))
            if n < len(schedule)
        )
        and len(times) <= len(schedule) + 1
    )
