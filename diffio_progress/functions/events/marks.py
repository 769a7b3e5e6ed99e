"""Marking an attempt: the event's deliveries, its attempts' records, the endpoint's health.

One commit in the ``webhooks`` database writes the event's new deliveries (and
``dueAt``, ``deliveryStatus``, the end of the lease) together with one
``webhookAttempts`` document per attempt (docs/delivery-storage.md). It is
conditional on the update time of this sender's claim: a sender whose lease
ran out and was taken over records nothing over the new holder's marks.
Each attempt also writes one log line; none carries a URL, a key or a secret.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from google.api_core import exceptions as google_exceptions
from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath

from diffio_progress.core.deliveries import (
    DELIVERED,
    Delivery,
    all_delivered,
    delivery_summary,
)
from diffio_progress.core.delivery_marks import attempt_document
from diffio_progress.core.endpoints import ENDPOINTS
from diffio_progress.core.events import outbox_path
from diffio_progress.core.webhook_records import LIVE

from ..firestore import FirestoreConnection
from .outbox_event import OutboxEvent, due_fields
from .sinks import SendResult

log = logging.getLogger("diffio_progress.events")

ATTEMPTS = "webhookAttempts"
ATTEMPT_ID_PREFIX = "att_"


def new_attempt_id() -> str:
    return ATTEMPT_ID_PREFIX + secrets.token_hex(16)


@dataclass(frozen=True)
class Attempted:
    """One attempt to mark: what the sink said, and the delivery it led to."""

    result: SendResult
    before: Delivery
    after: Delivery
    trigger: str
    at: datetime


def outcome_of(result: SendResult) -> dict[str, Any]:
    """What ``core.delivery_marks.attempt_document`` stores of an attempt's outcome."""
    return {
        "ok": result.ok,
        "httpStatus": result.http_status,
        "error": result.error,
        "durationMs": result.duration_ms,
        "response": result.response,
        "failureKind": result.failure_kind,
    }


def log_attempt(
    event_id: Any, event_type: Any, result: SendResult, status: str, trigger: str, **more: Any
) -> None:
    """delivery-contract.md §6: the one log line of every attempt, of a generation event or a
    test event alike; never a URL, a key or a secret."""
    fields: dict[str, Any] = {
        "deliveryStatus": status,
        "httpStatus": result.http_status,
        "endpointId": result.endpoint_id,
        "eventId": event_id,
        "eventType": event_type,
        "trigger": trigger,
        **more,
        "durationMs": result.duration_ms,
    }
    if not result.ok and not result.skipped:
        fields.update(failureKind=result.failure_kind, error=result.error)
    level = logging.INFO if result.ok or result.skipped else logging.WARNING
    log.log(
        level,
        "attempt of %s to %s: %s",
        event_type,
        result.endpoint_id,
        status,
        extra={"fields": fields},
    )


class Marker:
    """Writes marks, attempts and health through the ``webhooks`` connection; thread-safe."""

    def __init__(
        self,
        connection: FirestoreConnection,
        log_days: float = 30.0,
        attempt_ids: Callable[[], str] = new_attempt_id,
    ) -> None:
        self.connection = connection
        self.log_days = log_days
        self.attempt_ids = attempt_ids

    def mark(
        self, event: OutboxEvent, deliveries: Mapping[str, Delivery], attempted: list[Attempted]
    ) -> bool:
        """Store ``deliveries`` (the event's whole map after this sender's attempts) and
        the attempts; end the lease. False when the lease had been lost to another sender."""
        changed = {a.result.endpoint_id for a in attempted} | {
            k for k, d in deliveries.items() if event.deliveries.get(k) != d
        }
        fields: dict[str, Any] = {
            FieldPath("deliveries", k).to_api_repr(): deliveries[k].to_map()
            for k in sorted(changed)
        }
        fields.update(due_fields(deliveries))
        endpoint_id, status = delivery_summary(deliveries, event.api_key_id, LIVE)
        fields.update(deliveryEndpointId=endpoint_id, deliveryStatus=status)
        fields["deliveringUntil"] = firestore.DELETE_FIELD
        sent = [a for a in attempted if not a.result.skipped]
        if sent:
            fields["attempts"] = firestore.Increment(len(sent))
        reached = [a.result.endpoint_id for a in sent if a.after.status == DELIVERED]
        if reached:
            fields["deliveredTo"] = firestore.ArrayUnion(reached)
        if all_delivered(deliveries):
            fields["deliveredAt"] = firestore.SERVER_TIMESTAMP
        with self.connection.guarded() as client:
            batch = client.batch()
            batch.update(
                client.document(*outbox_path(*event.parent, event.event_type)),
                fields,
                option=client.write_option(last_update_time=event.update_time),
            )
            for attempt in sent:
                attempt_id = self.attempt_ids()
                record = self._record(event, attempt, attempt_id)
                batch.set(client.document(ATTEMPTS, attempt_id), record)
            try:
                # Sent once: Increment is not idempotent, and a landed retry would conflict.
                batch.commit(retry=None, timeout=self.connection.timeout)
            except (google_exceptions.FailedPrecondition, google_exceptions.NotFound):
                log.warning(
                    "lease on %s lost before its mark; another sender has it",
                    event.event_id,
                    extra={"fields": {"eventId": event.event_id}},
                )
                return False
        for attempt in attempted:
            self._log(event, attempt)
        return True

    def _record(self, event: OutboxEvent, attempt: Attempted, attempt_id: str) -> dict[str, Any]:
        fields = {
            "eventId": event.event_id,
            "eventType": event.event_type,
            "apiKeyId": event.api_key_id,
            "mode": LIVE,
        }
        result = attempt.result
        outcome = outcome_of(result)
        return attempt_document(
            attempt_id,
            fields,
            result.endpoint_id,
            attempt.trigger,
            outcome,
            attempt.at,
            self.log_days,
        )

    def _log(self, event: OutboxEvent, attempt: Attempted) -> None:
        result = attempt.result
        status = "skipped" if result.skipped else attempt.after.status
        log_attempt(
            event.event_id,
            event.event_type,
            result,
            status,
            attempt.trigger,
            generationId=event.generation_id,
            attempt=attempt.after.attempts,
        )

    def health(self, endpoint_id: str, changes: Mapping[str, Any]) -> None:
        """Write an endpoint's health transition; disabling it is one warning."""
        fields = {k: (firestore.DELETE_FIELD if v is None else v) for k, v in changes.items()}
        with self.connection.guarded() as client:
            try:
                client.document(ENDPOINTS, endpoint_id).update(
                    fields, retry=self.connection.retry, timeout=self.connection.timeout
                )
            except google_exceptions.NotFound:
                return  # the endpoint was deleted meanwhile
        if changes.get("disabled") is True:
            log.warning(
                "webhook endpoint %s disabled: %s",
                endpoint_id,
                changes.get("disabledReason"),
                extra={
                    "fields": {"endpointId": endpoint_id, "reason": changes.get("disabledReason")}
                },
            )
