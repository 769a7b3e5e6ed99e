"""One relay call: find the due deliveries with one query, attempt them in rank order, count.

delivery-contract.md §2. The query is ``collection_group("events")`` where
``dueAt <= now``, ordered by ``dueAt``, at most ``RELAY_BATCH``: ``dueAt``
exists only while a delivery is pending, so its index holds what is pending
and nothing of the delivered past, and the query's billed reads are what is
due plus one. Due events are grouped by generation; each generation goes
through the event function's ``Deliverer`` (its lease, its rank order), on a
bounded pool of threads. A lower-ranked event of a generation that is not due
in this batch is read (only those), so an endpoint never gets a higher one
first. Another sender's live lease is never retaken: that generation waits
for the next call.
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from google.cloud.firestore_v1.base_query import FieldFilter

from diffio_progress.core.deliveries import RELAY_TRIGGER
from diffio_progress.core.events import EVENTS, RANKS

from ..events.delivery import Deliverer, Tally
from ..events.outbox import Outbox
from ..events.outbox_event import OutboxEvent, from_snapshot
from ..events.sinks import SinkSession

log = logging.getLogger("diffio_progress.relay")

# Generations delivered at once within one call (each sends its events in order).
PARALLEL_GENERATIONS = 16


class Relay:
    """Attempts due deliveries; calls may run at once (leases keep them apart)."""

    def __init__(
        self,
        outbox: Outbox,
        deliverer: Deliverer | None,
        batch: int,
        clock: Callable[[], datetime],
        parallel: int = PARALLEL_GENERATIONS,
    ) -> None:
        self.outbox = outbox
        self.deliverer = deliverer
        self.batch = batch
        self.clock = clock
        self.parallel = parallel

    def __call__(self) -> dict[str, int]:
        """One pass over what is due now: ``{"due", "delivered", "failed", "retried"}``."""
        by = "relay-" + secrets.token_hex(8)
        if self.deliverer is None:
            return Tally().counts()
        deliverer = self.deliverer
        due = self.due(self.clock())
        generations: dict[tuple[str, str], list[OutboxEvent]] = defaultdict(list)
        for event in due:
            generations[event.parent].append(event)
        sessions = _Sessions(deliverer)
        total = Tally()
        lock = threading.Lock()

        def relay(events: list[OutboxEvent]) -> None:
            tally = self._generation(deliverer, events, by, sessions)
            with lock:
                total.add(tally)

        # Calls at once take up the same due events: each starts at another place among
        # them, so that they mostly find different generations free, not each other's leases.
        groups = list(generations.values())
        random.shuffle(groups)
        if len(groups) <= 1:
            for events in groups:
                relay(events)
        else:
            workers = min(self.parallel, len(groups))
            with ThreadPoolExecutor(workers, thread_name_prefix="relay") as pool:
                list(pool.map(relay, groups))
        return total.counts()

    def due(self, now: datetime) -> list[OutboxEvent]:
        """The events with a delivery due, oldest due first: one query."""
        connection = self.outbox.connection
        with connection.guarded() as client:
            query = (
                client.collection_group(EVENTS)
                .where(filter=FieldFilter("dueAt", "<=", now))
                .order_by("dueAt")
                .limit(self.batch)
            )
            snapshots = query.get(retry=connection.retry, timeout=connection.timeout)
        return [e for s in snapshots if (e := from_snapshot(s)) is not None]

    def _generation(
        self, deliverer: Deliverer, due: list[OutboxEvent], by: str, sessions: _Sessions
    ) -> Tally:
        """One generation's due events, after the lower-ranked ones they must follow."""
        have = {e.event_type for e in due}
        top = max(e.rank for e in due)
        lower = [t for t, rank in RANKS.items() if rank < top and t not in have]
        events = list(due)
        if lower:
            events += list(self.outbox.read(*due[0].parent, tuple(lower)).events.values())
        events.sort(key=lambda e: (e.rank, e.event_type))
        try:
            key = next((e.api_key_id for e in events if e.api_key_id), None)
            session = sessions.get(key) if key else None
            return deliverer.deliver(events, by, RELAY_TRIGGER, session)
        except Exception as error:  # one generation's failure never stops the others
            log.warning(
                "relay could not deliver generation %s: %s",
                due[0].generation_id,
                type(error).__name__,
                extra={"fields": {"generationId": due[0].generation_id}},
            )
            return Tally()


class _Sessions:
    """One sink session per API key per call: the key's endpoints are read once."""

    def __init__(self, deliverer: Deliverer) -> None:
        self._deliverer = deliverer
        self._sessions: dict[str, SinkSession] = {}
        self._lock = threading.Lock()

    def get(self, api_key_id: str) -> SinkSession:
        with self._lock:
            session = self._sessions.get(api_key_id)
            if session is None:
                session = self._deliverer.sink.session(api_key_id)
                self._sessions[api_key_id] = session
            return session
