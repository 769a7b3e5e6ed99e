"""The delivery log's writes in the ``webhooks`` database: test events, recover, test resends.

docs/delivery-storage.md. Recover marks the outbox's failed and skipped
deliveries pending, due now (``dueAt``), for the relay to send in order: each
write conditional on the document being as read, so a conflict with a sender
(the relay marking it meanwhile) reads it again, and already pending ones are
left alone, so a repeat is harmless. Test events (``webhookTests``) are never
given a ``dueAt`` (the relay sends generation events only): recover hands them
back for the call to send itself. Outbox events are leased, sent and marked by
the event function's own ``Outbox`` and ``Marker``; a test event's resend takes
the same kind of lease (``deliveringUntil`` / ``deliveringBy``) here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from google.api_core import exceptions as google_exceptions
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.field_path import FieldPath

from diffio_progress.core.deliveries import delivery_summary, read_deliveries
from diffio_progress.core.delivery_marks import RECOVERABLE, recovered
from diffio_progress.core.errors import DeliveryInProgress, EventNotFound
from diffio_progress.core.log_views import ATTEMPTS

from ..events.outbox_event import due_fields
from ..firestore import FirestoreConnection
from ..store import Document
from .log_store import DeliveryLogStore, Path

log = logging.getLogger("diffio_progress.events")

RECOVER_BATCH = 200
_RECOVER_ROUNDS = 5
_OUTBOX_DEPTH = 6  # apiProjects/{p}/generations/{g}/events/{type}


class _Scope(NamedTuple):
    """Whose deliveries a recover makes pending, to which endpoint, and when."""

    api_key_id: str
    mode: str
    window: tuple[datetime, datetime | None]
    endpoint_id: str
    takes: frozenset[str]
    now: datetime


class DeliveryLogWrites:
    """Writes of test events, recoveries and test resends; safe to share across threads."""

    def __init__(self, store: DeliveryLogStore) -> None:
        self.store = store
        self.connection: FirestoreConnection = store.connection

    def record(self, path: Path, event: Document, attempt: Document) -> None:
        """A test event and its one attempt, in one commit."""
        connection = self.connection
        with connection.guarded() as client:
            batch = client.batch()
            batch.set(client.document(*path), event)
            batch.set(client.collection(ATTEMPTS).document(attempt["attemptId"]), attempt)
            batch.commit(retry=connection.retry, timeout=connection.timeout)

    def recover(
        self,
        api_key_id: str,
        mode: str,
        window: tuple[datetime, datetime | None],
        endpoint_id: str,
        takes: frozenset[str],
        now: datetime,
    ) -> tuple[int, list[tuple[Path, Document]]]:
        """Make the key's outbox deliveries in ``window`` that are failed or skipped pending,
        due ``now``: how many; and the test events to recover, oldest first."""
        scope = _Scope(api_key_id, mode, window, endpoint_id, takes, now)
        marked, tests = 0, None
        for _ in range(_RECOVER_ROUNDS):
            done, found, conflicted = self._round(scope)
            marked += done
            tests = found if tests is None else tests
            if not conflicted:
                break
        return marked, tests or []

    def _round(self, scope: _Scope) -> tuple[int, list[tuple[Path, Document]], bool]:
        api_key_id, mode, window, endpoint_id, takes, now = scope
        connection = self.connection
        marked, tests, writes, conflicted = 0, [], [], False
        with connection.guarded() as client:
            query = self.store.events_query(client, api_key_id, mode, *window)
            query = query.where(filter=FieldFilter("deliveryStatus", "in", list(RECOVERABLE)))
            # Ordered as list_events is, so its declared index serves this query too.
            query = query.order_by("createdAt", direction=firestore.Query.DESCENDING).order_by(
                "__name__", direction=firestore.Query.DESCENDING
            )
            for snapshot in query.stream(retry=connection.retry, timeout=connection.timeout):
                document = snapshot.to_dict() or {}
                if takes and document.get("eventType") not in takes:
                    continue
                path = tuple(snapshot.reference.path.split("/"))
                if len(path) != _OUTBOX_DEPTH:
                    tests.append((path, document))
                    continue
                fields = _recovered_fields(document, endpoint_id, api_key_id, mode, now)
                if fields is not None:
                    writes.append((snapshot, fields))
            for start in range(0, len(writes), RECOVER_BATCH):
                chunk = writes[start : start + RECOVER_BATCH]
                batch = client.batch()
                for snapshot, fields in chunk:
                    when = client.write_option(last_update_time=snapshot.update_time)
                    batch.update(snapshot.reference, fields, option=when)
                try:
                    batch.commit(retry=None, timeout=connection.timeout)
                    marked += len(chunk)
                except google_exceptions.FailedPrecondition:
                    conflicted = True  # read again next round
        tests.sort(key=lambda item: (item[1].get("createdAt"), item[1].get("rank", 0)))
        return marked, tests, conflicted

    def claim(self, path: Path, by: str, lease_seconds: float, now: datetime) -> Document:
        """Lease the test event at ``path`` for a resend; its document as leased.

        409 ``delivery_in_progress`` under another caller's live lease, or when
        another writer changed the event between the read and the lease.
        """
        connection = self.connection
        with connection.guarded() as client:
            ref = client.document(*path)
            snapshot = ref.get(retry=connection.retry, timeout=connection.timeout)
            if not snapshot.exists:
                raise EventNotFound()
            document = snapshot.to_dict() or {}
            until = document.get("deliveringUntil")
            if isinstance(until, datetime) and until > now:
                raise DeliveryInProgress()
            lease = {"deliveringUntil": now + timedelta(seconds=lease_seconds), "deliveringBy": by}
            try:
                ref.update(
                    lease,
                    option=client.write_option(last_update_time=snapshot.update_time),
                    retry=None,
                    timeout=connection.timeout,
                )
            except google_exceptions.FailedPrecondition:
                raise DeliveryInProgress() from None
        return {**document, **lease}

    def finish(self, path: Path, fields: Mapping[str, Any], attempt: Document) -> None:
        """Record a test event's attempt and its new delivery, ending the lease, in one commit."""
        connection = self.connection
        ended = {**fields, "deliveringUntil": firestore.DELETE_FIELD}
        with connection.guarded() as client:
            batch = client.batch()
            batch.update(client.document(*path), ended)
            batch.set(client.collection(ATTEMPTS).document(attempt["attemptId"]), attempt)
            batch.commit(retry=connection.retry, timeout=connection.timeout)

    def release(self, path: Path) -> None:
        """End a test resend's lease without an attempt (the send raised)."""
        connection = self.connection
        with connection.guarded() as client:
            client.document(*path).update(
                {"deliveringUntil": firestore.DELETE_FIELD},
                retry=connection.retry,
                timeout=connection.timeout,
            )


def _recovered_fields(
    document: Document, endpoint_id: str, api_key_id: str, mode: str, now: datetime
) -> dict[str, Any] | None:
    """The outbox fields of a recover: the delivery, ``dueAt`` and the summary; or ``None``."""
    deliveries = read_deliveries(document.get("deliveries"))
    after = recovered(deliveries.get(endpoint_id), now)
    if after is None:
        return None
    deliveries[endpoint_id] = after
    shown_id, status = delivery_summary(deliveries, api_key_id, mode)
    return {
        FieldPath("deliveries", endpoint_id).to_api_repr(): after.to_map(),
        **due_fields(deliveries),
        "deliveryEndpointId": shown_id,
        "deliveryStatus": status,
    }
