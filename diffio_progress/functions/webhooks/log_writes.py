"""The delivery log's writes in the ``webhooks`` database: test events, recover, resend's lease.

docs/delivery-storage.md. Each attempt's document is written in the same
commit as the mark of its event. A resend sends under the event's one-sender
lease (``deliveringUntil`` / ``deliveringBy``, the outbox's): taken with a
write conditional on the document's update time, never over another caller's
live lease, and ended by the commit that records the attempt. Recover marks
in batches, each write conditional on the document being as read; a conflict
(the relay marked one meanwhile) makes it read again, and already pending ones
are left alone, so a repeat is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from google.api_core import exceptions as google_exceptions
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from diffio_progress.core.delivery_marks import REMOVE, Attempt, recover_fields
from diffio_progress.core.errors import DeliveryInProgress, EventNotFound
from diffio_progress.core.log_views import ATTEMPTS

from ..firestore import FirestoreConnection
from ..store import Document
from .log_store import DeliveryLogStore, Path

log = logging.getLogger("diffio_progress.events")

RECOVER_BATCH = 200
_RECOVER_ROUNDS = 5
_RECOVERABLE = ["failed", "skipped"]


def log_attempt(event_id: str, endpoint_id: str, trigger: str, attempt: Attempt) -> None:
    """delivery-contract.md §6: one line per attempt, never a URL or a secret."""
    fields: dict[str, Any] = {
        "deliveryStatus": attempt.status,
        "httpStatus": attempt.http_status,
        "endpointId": endpoint_id,
        "eventId": event_id,
        "trigger": trigger,
    }
    if not attempt.delivered:
        fields["failureKind"] = attempt.failure_kind or "endpoint"
    log.info("webhook attempt %s: %s", trigger, attempt.status, extra={"fields": fields})


class DeliveryLogWrites:
    """Writes of test events, recoveries and resends; safe to share across threads."""

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
    ) -> int:
        """Make the key's failed and skipped deliveries in ``window`` pending, due ``now``."""
        recovered = 0
        for _ in range(_RECOVER_ROUNDS):
            done, conflicted = self._recover_round(
                api_key_id, mode, window, endpoint_id, takes, now
            )
            recovered += done
            if not conflicted:
                return recovered
        return recovered  # what is left conflicted on every round: a client may call again

    def _recover_round(
        self,
        api_key_id: str,
        mode: str,
        window: tuple[datetime, datetime | None],
        endpoint_id: str,
        takes: frozenset[str],
        now: datetime,
    ) -> tuple[int, bool]:
        connection = self.connection
        recovered, conflicted = 0, False
        with connection.guarded() as client:
            query = self.store.events_query(client, api_key_id, mode, *window).where(
                filter=FieldFilter("deliveryStatus", "in", _RECOVERABLE)
            )
            snapshots = list(query.stream(retry=connection.retry, timeout=connection.timeout))
            for start in range(0, len(snapshots), RECOVER_BATCH):
                batch, count = client.batch(), 0
                for snapshot in snapshots[start : start + RECOVER_BATCH]:
                    fields = recover_fields(snapshot.to_dict() or {}, endpoint_id, takes, now)
                    if fields is None:
                        continue
                    batch.update(
                        snapshot.reference,
                        _writable(fields),
                        option=client.write_option(last_update_time=snapshot.update_time),
                    )
                    count += 1
                if not count:
                    continue
                try:
                    batch.commit(retry=None, timeout=connection.timeout)
                    recovered += count
                except google_exceptions.FailedPrecondition:
                    conflicted = True  # read again next round
        return recovered, conflicted

    def claim(self, path: Path, by: str, lease_seconds: float, now: datetime) -> Document:
        """Lease the event at ``path`` for a resend; its document as leased.

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
        """Record a resend's attempt and mark its event, ending the lease, in one commit."""
        connection = self.connection
        ended = {**fields, "deliveringUntil": REMOVE, "deliveringBy": REMOVE}
        with connection.guarded() as client:
            batch = client.batch()
            batch.update(client.document(*path), _writable(ended))
            batch.set(client.collection(ATTEMPTS).document(attempt["attemptId"]), attempt)
            batch.commit(retry=connection.retry, timeout=connection.timeout)

    def release(self, path: Path) -> None:
        """End a resend's lease without an attempt (the send raised)."""
        connection = self.connection
        with connection.guarded() as client:
            client.document(*path).update(
                {"deliveringUntil": firestore.DELETE_FIELD, "deliveringBy": firestore.DELETE_FIELD},
                retry=connection.retry,
                timeout=connection.timeout,
            )


def _writable(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (firestore.DELETE_FIELD if v is REMOVE else v) for k, v in fields.items()}
