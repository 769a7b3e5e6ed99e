"""The outbox: forward-only events recorded atomically with their deliveries, leased to one sender.

``apiProjects/{p}/generations/{g}/events/{eventType}`` in the ``webhooks``
database (docs/delivery-storage.md): one document per type at a fixed id. A
new event is one atomic commit without a transaction: create its document
(with its ``deliveries``, due at once, and this call's lease already on it, so
the fast path costs no second write), and assert that no document of its rank
or higher exists (a delete with an exists=false precondition, a no-op unless
violated). Of two racing calls one commits and the other's preconditions fail.
Any other sender (a retry, the relay) leases an event with a write conditional
on the update time it read, and never over a live lease.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from google.api_core import exceptions as google_exceptions
from google.cloud import firestore

from diffio_progress.core.deliveries import Delivery
from diffio_progress.core.events import (
    EVENT_TYPES,
    RANKS,
    EventKind,
    in_rank_order,
    is_new,
    outbox_path,
)

from ..firestore import FirestoreConnection
from .outbox_event import OutboxEvent, from_snapshot, new_event_id, read_event

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recorded:
    """What a call recorded (``new``, or ``None``), and every event of the generation."""

    new: OutboxEvent | None
    events: tuple[OutboxEvent, ...]


@dataclass(frozen=True)
class Stored:
    """A generation's outbox as read: its well-formed events, and every type present."""

    events: dict[str, OutboxEvent]
    present: frozenset[str]


@dataclass(frozen=True)
class NewEvent:
    """What the caller decided a new event is: its payload, deliveries and fields to store."""

    kind: EventKind
    event_id: str
    payload: dict[str, Any]
    deliveries: dict[str, Delivery]
    fields: dict[str, Any]

    @property
    def event_type(self) -> str:
        return self.kind.event_type


class Outbox:
    """Reads, records and leases the events of one generation at a time; thread-safe."""

    def __init__(
        self,
        connection: FirestoreConnection,
        clock: Callable[[], datetime],
        event_ids: Callable[[], str] = new_event_id,
    ) -> None:
        self.connection = connection
        self.clock = clock
        self.event_ids = event_ids

    def read(
        self, api_project_id: str, generation_id: str, types: tuple[str, ...] = EVENT_TYPES
    ) -> Stored:
        """The generation's outbox documents (all four unless told) in one batched read."""
        found: dict[str, OutboxEvent] = {}
        present: set[str] = set()
        with self.connection.guarded() as client:
            refs = [client.document(*outbox_path(api_project_id, generation_id, t)) for t in types]
            for snapshot in client.get_all(
                refs, retry=self.connection.retry, timeout=self.connection.timeout
            ):
                if snapshot.exists:
                    # A malformed document still counts as recorded (forward only).
                    present.add(snapshot.id)
                    event = read_event(
                        api_project_id,
                        generation_id,
                        snapshot.id,
                        snapshot.to_dict() or {},
                        snapshot.update_time,
                    )
                    if event is not None:
                        found[snapshot.id] = event
        return Stored(found, frozenset(present))

    def record(
        self, stored: Stored, new: NewEvent | None, lease: tuple[datetime, str] | None
    ) -> Recorded:
        """Record ``new`` unless ``stored`` (as the caller just read it) has it or a later one.

        ``lease`` is (until, by): the new event is created already leased to
        this call. A racing call that recorded this event, or a later one, in
        the meantime makes this call record nothing.
        """
        events = dict(stored.events)
        created = None
        if new is not None and is_new(new.kind, stored.present):
            created = self._create(new, lease)
            if created is not None:
                events[created.event_type] = created
                unseen = [
                    t for t in EVENT_TYPES if RANKS[t] < created.rank and t not in stored.present
                ]
                events.update(self._fresh(created, unseen))
        return Recorded(created, tuple(events[t] for t in in_rank_order(events)))

    def _create(self, new: NewEvent, lease: tuple[datetime, str] | None) -> OutboxEvent | None:
        project_id, generation_id = new.fields["apiProjectId"], new.fields["generationId"]
        document = dict(new.fields)
        if lease is not None:
            document["deliveringUntil"], document["deliveringBy"] = lease
        with self.connection.guarded() as client:
            batch = client.batch()
            rank = RANKS[new.event_type]
            for event_type in EVENT_TYPES:
                ref = client.document(*outbox_path(project_id, generation_id, event_type))
                if event_type == new.event_type:
                    batch.create(ref, document)
                elif RANKS[event_type] >= rank:
                    # Deletes nothing: it only asserts that the document does not exist.
                    batch.delete(ref, option=client.write_option(exists=False))
            try:
                # Sent once: a retried commit that had landed would fail its own
                # preconditions and read as a racing call's. A failure fails the
                # call instead, and Eventarc's retry finds the event if it landed.
                results = batch.commit(retry=None, timeout=self.connection.timeout)
            except (google_exceptions.AlreadyExists, google_exceptions.FailedPrecondition):
                return None  # a racing call recorded this event or a later one first
        update_time = next((r.update_time for r in results if r.update_time), None)
        return OutboxEvent(
            project_id,
            generation_id,
            new.event_type,
            new.event_id,
            new.payload,
            new.deliveries,
            update_time,
            lease[0] if lease else None,
            document.get("createdAt"),
        )

    def _fresh(self, created: OutboxEvent, unseen: list[str]) -> dict[str, OutboxEvent]:
        """The lower-ranked events the caller's read did not show, as they are now.

        That read came before this call's commit: a racing call may have recorded
        a lower event in between, which must reach every endpoint first. Nothing
        lower can be recorded after this commit (forward only), so this is all.
        """
        if not unseen:
            return {}
        read = self.read(created.api_project_id, created.generation_id, tuple(unseen)).events
        return {t: e for t in unseen if (e := read.get(t)) is not None}

    def claim(self, event: OutboxEvent, by: str, lease_seconds: float) -> OutboxEvent | None:
        """Lease ``event`` as read; None when another sender holds it or wrote it since.

        A conditional write on the update time the caller read: a live lease is
        never retaken, whoever holds it (even the same CloudEvent). On a
        conflict, or when the caller's copy shows a lease (which may have ended
        since: a sender waiting for it must see it end), the document is read
        once more and claimed if it is free.
        """
        for fresh_read in (False, True):
            if fresh_read:
                event = self._reread(event) or event
                if event.update_time is None:
                    return None
            now = self.clock()
            if event.leased(now):
                if fresh_read:
                    return None
                continue
            until = now + timedelta(seconds=lease_seconds)
            path = outbox_path(*event.parent, event.event_type)
            try:
                with self.connection.guarded() as client:
                    # Sent once: a retried write that had landed would read as a conflict.
                    result = client.document(*path).update(
                        {"deliveringUntil": until, "deliveringBy": by},
                        option=client.write_option(last_update_time=event.update_time),
                        retry=None,
                        timeout=self.connection.timeout,
                    )
                return replace(event, update_time=result.update_time, lease_until=until)
            except (google_exceptions.FailedPrecondition, google_exceptions.NotFound):
                continue
        return None

    def _reread(self, event: OutboxEvent) -> OutboxEvent | None:
        with self.connection.guarded() as client:
            snapshot = client.document(*outbox_path(*event.parent, event.event_type)).get(
                retry=self.connection.retry, timeout=self.connection.timeout
            )
        return from_snapshot(snapshot) if snapshot.exists else None

    def release(self, event: OutboxEvent) -> None:
        """End this call's lease early: a later sender need not wait it out."""
        with self.connection.guarded() as client:
            client.document(*outbox_path(*event.parent, event.event_type)).update(
                {"deliveringUntil": firestore.DELETE_FIELD},
                retry=self.connection.retry,
                timeout=self.connection.timeout,
            )
