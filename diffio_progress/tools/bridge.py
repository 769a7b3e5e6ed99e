"""The local Eventarc: emulator listeners turn each generation or job write into a CloudEvent POST.

Production wires Firestore to ``on_generation_written`` with Eventarc triggers;
the emulator has none. The bridge listens to the ``generations`` and ``jobs``
collection groups (``on_snapshot``), keeps the last copy of each document so
every change has its old and new value, and POSTs each change in binary mode
with protobuf data, exactly as Eventarc would: several at once, in no
guaranteed order. It retries a failed POST a few times, as ``--retry`` makes
Eventarc do. A listener reports the latest state,
so writes closer together than its round trip may arrive as one change:
Eventarc would send each one, but the event function composes the current
status either way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
from google.cloud import firestore

from diffio_progress.core import paths
from diffio_progress.core.events import parse_target

from .cloud_events import written_event

_RETRIES = (0.2, 0.5, 1.0, 2.0)
# Eventarc delivers concurrently; so does the bridge, or a burst of writes would queue up.
_CONCURRENT_POSTS = 4


@dataclass(frozen=True)
class Change:
    path: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    committed: Any  # the write's commit time (the snapshot's update time)


class Bridge:
    """Forwards changes to ``url`` until stopped; ``send`` replaces the POST (benchmarks)."""

    def __init__(
        self,
        db: firestore.Client,
        url: str,
        on_error: Callable[[str], None],
        send: Callable[[Change], None] | None = None,
    ) -> None:
        self._db = db
        self._url = url
        self._on_error = on_error
        self._send = send or self._post
        self._known: dict[str, dict[str, Any]] = {}
        self._watches: list[Any] = []
        self._ready = {name: threading.Event() for name in (paths.GENERATIONS, paths.JOBS)}
        self._client = httpx.Client(timeout=30)
        self._pool = ThreadPoolExecutor(_CONCURRENT_POSTS, thread_name_prefix="bridge")
        self._existing = False

    def start(self, existing: bool = False, timeout: float = 30) -> Bridge:
        """Listen. ``existing``: forward the documents already there as created, and return at
        once; otherwise skip them, and return once both listeners have their first snapshot."""
        self._existing = existing
        for group in self._ready:
            watch = self._db.collection_group(group).on_snapshot(self._listener(group))
            self._watches.append(watch)
        if not existing:
            for ready in self._ready.values():
                ready.wait(timeout)
        return self

    def stop(self) -> None:
        for watch in self._watches:
            watch.unsubscribe()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()

    def _listener(self, group: str) -> Callable[..., None]:
        def on_snapshot(snapshots: Any, changes: Any, read_time: Any) -> None:
            first = not self._ready[group].is_set() and not self._existing
            for change in changes:
                document = change.document
                path = document.reference.path
                if parse_target(path) is None:
                    continue  # a collection of that name outside the contract
                before = self._known.get(path)
                removed = change.type.name == "REMOVED"
                after = None if removed else (document.to_dict() or {})
                if after is None:
                    self._known.pop(path, None)
                else:
                    self._known[path] = after
                if not first:
                    committed = read_time if removed else document.update_time
                    self._pool.submit(self._forward, Change(path, before, after, committed))
            self._ready[group].set()

        return on_snapshot

    def _forward(self, change: Change) -> None:
        try:
            self._send(change)
        except Exception as error:  # the bridge outlives one bad change
            self._on_error(f"bridge: {change.path}: {type(error).__name__}: {error}")

    def _post(self, change: Change) -> None:
        headers, body = written_event(self._db.project, change.path, change.before, change.after)
        status = None
        for pause in (*_RETRIES, None):
            try:
                status = self._client.post(self._url, headers=headers, content=body).status_code
            except httpx.TransportError:
                status = None
            if status is not None and status < 300:
                return
            if pause is not None:
                time.sleep(pause)
        self._on_error(f"bridge: the event function answered {status} for {change.path}")
