"""The outbox: forward-only events recorded atomically, leased to one sender, marked delivered.

``apiProjects/{p}/generations/{g}/events/{eventType}`` (events-contract.md §4):
one document per type at a fixed id. The caller reads all four in its batch;
when that shows nothing new (most calls) nothing is written. A new event is
one atomic commit without a transaction: create its document, and assert that
no document of its rank or higher exists (a delete with an exists=false
precondition, a no-op unless violated). Of two racing calls one commits and
the other's preconditions fail; nobody holds a lock while others wait, and the
job documents that workers write are never involved. Before sending, a call
leases the event with a write conditional on the document's update time.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from google.api_core import exceptions as google_exceptions
from google.cloud import firestore

from diffio_progress.core.events import (
    EVENT_ID_PREFIX,
    EVENT_TYPES,
    RANKS,
    build_payload,
    in_rank_order,
    is_new,
    kind_of,
    outbox_path,
)

from ..firestore import FirestoreConnection

log = logging.getLogger(__name__)


def new_event_id() -> str:
    """``evt_`` and 128 random bits as 32 hex characters (the contract asks for 24 or more)."""
    return EVENT_ID_PREFIX + secrets.token_hex(16)


@dataclass(frozen=True)
class OutboxEvent:
    """One recorded event, as its outbox document holds it."""

    event_type: str
    event_id: str
    payload: dict[str, Any]
    delivered: bool = False
    delivered_to: tuple[str, ...] = ()
    attempts: int = 0

    @property
    def rank(self) -> int:
        return RANKS[self.event_type]


@dataclass(frozen=True)
class Recorded:
    """What a call recorded (``new``, or ``None``), and every event of the generation."""

    new: OutboxEvent | None
    events: tuple[OutboxEvent, ...]

    def undelivered(self) -> list[OutboxEvent]:
        """The events still to deliver, in the order a client must receive them."""
        waiting = {e.event_type: e for e in self.events if not e.delivered}
        return [waiting[t] for t in in_rank_order(waiting)]


@dataclass(frozen=True)
class Claim:
    """What claiming an event found: ``claimed`` (``event`` is fresh: send it), ``delivered``
    (nothing to send), or ``busy`` (another call holds a live lease: send nothing)."""

    state: str
    event: OutboxEvent | None = None
    expires: float = 0.0  # time.monotonic() when a lease this call took runs out


CLAIMED, DELIVERED, BUSY = "claimed", "delivered", "busy"


def read_event(event_type: str, document: Mapping[str, Any]) -> OutboxEvent | None:
    """An outbox document as an event; one that lost its id or payload cannot be delivered."""
    event_id, payload = document.get("eventId"), document.get("payload")
    if not isinstance(event_id, str) or not isinstance(payload, dict):
        log.warning(
            "outbox event %s is malformed; it counts as recorded but is not delivered", event_type
        )
        return None
    delivered_to = document.get("deliveredTo")
    attempts = document.get("attempts")
    return OutboxEvent(
        event_type,
        event_id,
        payload,
        delivered=document.get("deliveredAt") is not None,
        delivered_to=tuple(x for x in delivered_to or () if isinstance(x, str)),
        attempts=attempts if isinstance(attempts, int) else 0,
    )


class Outbox:
    """Records and marks the events of one generation at a time; safe to share across threads."""

    def __init__(
        self,
        connection: FirestoreConnection,
        clock: Callable[[], datetime],
        event_ids: Callable[[], str] = new_event_id,
    ) -> None:
        self._connection = connection
        self._clock = clock
        self._event_ids = event_ids

    def record(
        self,
        api_project_id: str,
        generation_id: str,
        body: Mapping[str, Any],
        generation: Mapping[str, Any],
        stored: Mapping[str, Mapping[str, Any] | None],
    ) -> Recorded:
        """Record the event ``body``'s status stands for, if it outranks all recorded ones.

        ``stored`` is the outbox as the caller just read it (event type to
        document or ``None``). A racing call that recorded this event, or a
        later one, in the meantime makes this call record nothing.
        """
        present = {t: doc for t, doc in stored.items() if doc is not None}
        events = {t: e for t, doc in present.items() if (e := read_event(t, doc)) is not None}
        kind = kind_of(body["status"])
        new = None
        if is_new(kind, present):
            new = self._create(api_project_id, generation_id, body, generation)
            if new is not None:
                events[new.event_type] = new
                unseen = [t for t in EVENT_TYPES if RANKS[t] < new.rank and t not in present]
                events.update(self._fresh(api_project_id, generation_id, unseen))
        ordered = tuple(events[t] for t in in_rank_order(events))
        return Recorded(new, ordered)

    def _create(
        self,
        api_project_id: str,
        generation_id: str,
        body: Mapping[str, Any],
        generation: Mapping[str, Any],
    ) -> OutboxEvent | None:
        new, document = self._new_event(body, generation)
        with self._connection.guarded() as client:
            batch = client.batch()
            for event_type in EVENT_TYPES:
                ref = client.document(*outbox_path(api_project_id, generation_id, event_type))
                if event_type == new.event_type:
                    batch.create(ref, document)
                elif RANKS[event_type] >= new.rank:
                    # Deletes nothing: it only asserts that the document does not exist.
                    batch.delete(ref, option=client.write_option(exists=False))
            try:
                # Sent once: a retried commit that had landed would fail its own
                # preconditions and read as a racing call's. A failure fails the
                # call instead, and Eventarc's retry finds the event if it landed.
                batch.commit(retry=None, timeout=self._connection.timeout)
            except (google_exceptions.AlreadyExists, google_exceptions.FailedPrecondition):
                return None  # a racing call recorded this event or a later one first
        return new

    def _fresh(
        self, api_project_id: str, generation_id: str, unseen: list[str]
    ) -> dict[str, OutboxEvent]:
        """The lower-ranked events the caller's read did not show, as they are now.

        That read came before this call's commit: a racing call may have recorded
        a lower event in between, which must reach every endpoint first. Nothing
        lower can be recorded after this commit (forward only), so this is all.
        """
        if not unseen:
            return {}
        connection = self._connection
        found = {}
        with connection.guarded() as client:
            refs = [client.document(*outbox_path(api_project_id, generation_id, t)) for t in unseen]
            for snapshot in client.get_all(
                refs, retry=connection.retry, timeout=connection.timeout
            ):
                if snapshot.exists:
                    event = read_event(snapshot.id, snapshot.to_dict() or {})
                    if event is not None:
                        found[event.event_type] = event
        return found

    def _new_event(
        self, body: Mapping[str, Any], generation: Mapping[str, Any]
    ) -> tuple[OutboxEvent, dict[str, Any]]:
        now = self._clock()
        event_type = kind_of(body["status"]).event_type
        event_id = self._event_ids()
        payload = build_payload(body, generation, event_id, now)
        document = {
            "eventId": event_id,
            "eventType": event_type,
            "payload": payload,
            "createdAt": now,
            "deliveredAt": None,
            "deliveredTo": [],
            "attempts": 0,
        }
        return OutboxEvent(event_type, event_id, payload), document

    def claim(
        self,
        api_project_id: str,
        generation_id: str,
        event_type: str,
        by: str,
        lease_seconds: float,
    ) -> Claim:
        """Lease the event for one sender (events-contract.md §4 "One sender at a time").

        A conditional write: the lease is set only if the document is still as
        read (its update time), undelivered and not under a live lease. A live
        lease is never retaken, whoever holds it (even the same CloudEvent).
        """
        connection = self._connection
        path = outbox_path(api_project_id, generation_id, event_type)
        with connection.guarded() as client:
            ref = client.document(*path)
            snapshot = ref.get(retry=connection.retry, timeout=connection.timeout)
            document = (snapshot.to_dict() or {}) if snapshot.exists else {}
            event = read_event(event_type, document) if snapshot.exists else None
            if event is None or event.delivered:
                return Claim(DELIVERED)
            now = self._clock()
            until = document.get("deliveringUntil")
            if isinstance(until, datetime) and until > now:
                return Claim(BUSY)
            lease = {"deliveringUntil": now + timedelta(seconds=lease_seconds), "deliveringBy": by}
            expires = time.monotonic() + lease_seconds
            try:
                # Sent once (no retry): a retried write that had landed would read as a conflict.
                ref.update(
                    lease,
                    option=client.write_option(last_update_time=snapshot.update_time),
                    retry=None,
                    timeout=connection.timeout,
                )
            except google_exceptions.FailedPrecondition:
                return Claim(BUSY)  # another call wrote it since: its claim, or its delivery
        return Claim(CLAIMED, event, expires)

    def release(self, api_project_id: str, generation_id: str, event_type: str) -> None:
        """End this call's lease early (its delivery failed): a retry need not wait it out."""
        connection = self._connection
        with connection.guarded() as client:
            client.document(*outbox_path(api_project_id, generation_id, event_type)).update(
                {"deliveringUntil": firestore.DELETE_FIELD},
                retry=connection.retry,
                timeout=connection.timeout,
            )

    def mark(
        self,
        api_project_id: str,
        generation_id: str,
        event: OutboxEvent,
        delivered_to: list[str],
        done: bool,
    ) -> None:
        """Count an attempt, add the endpoints reached, set ``deliveredAt`` when ``done``,
        and end the lease (the caller holds it).

        Plain field transforms, no read: a racing call marking the same event
        only adds the same endpoint ids and another attempt.
        """
        fields: dict[str, Any] = {
            "attempts": firestore.Increment(1),
            "deliveringUntil": firestore.DELETE_FIELD,
        }
        if delivered_to:
            fields["deliveredTo"] = firestore.ArrayUnion(delivered_to)
        if done:
            fields["deliveredAt"] = firestore.SERVER_TIMESTAMP
        path = outbox_path(api_project_id, generation_id, event.event_type)
        connection = self._connection
        with connection.guarded() as client:
            client.document(*path).update(
                fields, retry=connection.retry, timeout=connection.timeout
            )
