"""What both event measurements share: a Firestore emulator, a key, a verifying receiver."""

from __future__ import annotations

import os
import statistics
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from google.cloud import firestore

from diffio_progress.functions.config import FIRESTORE_EMULATOR_HOST, GOOGLE_CLOUD_PROJECT, Settings
from diffio_progress.tools import emulator, keys

PROJECT = "diffio-events-bench"
USER = "bench-user"


def local_firestore(stack: ExitStack) -> firestore.Client:
    """The emulator in FIRESTORE_EMULATOR_HOST (emptied first), or one of our own."""
    host = os.environ.get(FIRESTORE_EMULATOR_HOST)
    if not host:
        started = emulator.FirestoreEmulator()
        stack.callback(started.stop)
        host = started.start().host_port
    os.environ[FIRESTORE_EMULATOR_HOST] = host
    os.environ[GOOGLE_CLOUD_PROJECT] = PROJECT
    emulator.clear(host, PROJECT)
    emulator.clear(host, PROJECT, Settings.webhook_database)
    return firestore.Client(project=PROJECT)


def bench_key(db: firestore.Client) -> tuple[str, str]:
    """A fresh API key for the bench user: (key, keyId)."""
    minted = keys.create_key(db, user_id=USER, now=datetime.now(UTC), label="events bench")
    return minted.key, minted.key_id


@dataclass
class Arrivals:
    """Verified events as the receiver reports them: (generationId, eventType) -> arrival."""

    seen: dict[tuple[str, str], datetime] = field(default_factory=dict)
    duplicates: int = 0

    def __post_init__(self) -> None:
        self._changed = threading.Condition()

    def on_event(self, event: Any, at: datetime) -> None:
        with self._changed:
            self.seen.setdefault((event.generationId, event.eventType), at)
            self._changed.notify_all()

    def on_repeat(self, event: Any) -> None:
        with self._changed:
            self.duplicates += 1

    def wait_for(self, generation_id: str, event_type: str, timeout: float = 60) -> datetime:
        with self._changed:
            if not self._changed.wait_for(
                lambda: (generation_id, event_type) in self.seen, timeout
            ):
                raise TimeoutError(f"no {event_type} for {generation_id} in {timeout:g} s")
            return self.seen[(generation_id, event_type)]

    def of(self, generation_id: str) -> list[str]:
        with self._changed:
            return [t for (g, t) in self.seen if g == generation_id]


def summary(values: list[float]) -> str:
    """``p50 / max (n)`` in milliseconds."""
    if not values:
        return "n/a"
    p50, top = statistics.median(values) * 1000, max(values) * 1000
    return f"p50 {p50:.0f} ms, max {top:.0f} ms (n={len(values)})"


def printer() -> Callable[[str], None]:
    lock = threading.Lock()

    def say(text: str) -> None:
        with lock:
            print(text, flush=True)

    return say
