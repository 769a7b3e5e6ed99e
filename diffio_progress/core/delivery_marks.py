"""Recover and resend on the delivery map, pure: the fields an event document gets, and attempts.

docs/delivery-storage.md: ``deliveries`` (endpoint id → delivery), the sparse
``dueAt`` (earliest ``nextAttemptAt`` of a pending delivery, absent when none),
``deliveryEndpointId`` / ``deliveryStatus`` (what ``list_events`` filters on),
and one ``webhookAttempts`` document per attempt. A field whose value is
``REMOVE`` is deleted by the writer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .log_views import MAX_RESPONSE_CHARS

PENDING, DELIVERED, FAILED, SKIPPED = "pending", "delivered", "failed", "skipped"
RECOVERABLE = (FAILED, SKIPPED)
REMOVE = object()  # the writer deletes a field with this value


@dataclass(frozen=True)
class Attempt:
    """How one POST went: ``delivered`` or ``failed``, and what the receiver answered."""

    status: str
    http_status: int | None
    error: str | None
    duration_ms: int
    response: str | None = None
    failure_kind: str | None = None  # "endpoint" or "ours"; None when delivered

    @property
    def delivered(self) -> bool:
        return self.status == DELIVERED


def attempt_document(
    attempt_id: str,
    event: Mapping[str, Any],
    endpoint_id: str,
    trigger: str,
    attempt: Attempt,
    at: datetime,
    log_days: float,
) -> dict[str, Any]:
    """The ``webhookAttempts`` document of ``attempt`` (its TTL field ``expiresAt``)."""
    document: dict[str, Any] = {
        "attemptId": attempt_id,
        "eventId": event.get("eventId"),
        "apiKeyId": event.get("apiKeyId"),
        "mode": event.get("mode"),
        "endpointId": endpoint_id,
        "at": at,
        "trigger": trigger,
        "status": attempt.status,
        "httpStatus": attempt.http_status,
        "error": attempt.error,
        "durationMs": attempt.duration_ms,
        "response": attempt.response[:MAX_RESPONSE_CHARS] if attempt.response else None,
        "expiresAt": at + timedelta(days=log_days),
    }
    if not attempt.delivered:
        document["failureKind"] = attempt.failure_kind or "endpoint"
    return document


def sent_delivery(attempt: Attempt, trigger: str, at: datetime) -> dict[str, Any]:
    """A delivery after its one attempt (a test event's): delivered or failed for good."""
    return {
        "status": DELIVERED if attempt.delivered else FAILED,
        "attempts": 1,
        "lastAttemptAt": at,
        "lastHttpStatus": attempt.http_status,
        "trigger": trigger,
    }


def recover_fields(
    document: Mapping[str, Any], endpoint_id: str, takes: frozenset[str], now: datetime
) -> dict[str, Any] | None:
    """The fields that make the event's delivery to ``endpoint_id`` pending again, due now,
    with a fresh schedule; ``None`` when it is delivered, pending or of a type not taken."""
    if takes and document.get("eventType") not in takes:
        return None
    deliveries = dict(_deliveries(document))
    current = deliveries.get(endpoint_id)
    status = current.get("status") if isinstance(current, dict) else SKIPPED
    if status not in RECOVERABLE:
        return None
    fresh = {**(current if isinstance(current, dict) else {}), "status": PENDING, "attempts": 0}
    fresh.update(nextAttemptAt=now, trigger="recover")
    deliveries[endpoint_id] = fresh
    return {
        "deliveries": deliveries,
        "dueAt": due_at(deliveries),
        "deliveryEndpointId": endpoint_id,
        "deliveryStatus": PENDING,
        "deliveredAt": None,
    }


def resend_fields(
    document: Mapping[str, Any], endpoint_id: str, attempt: Attempt, at: datetime
) -> dict[str, Any]:
    """The event's fields after a resend: a delivered one makes the delivery delivered (and a
    pending one stops being scheduled); a failed one only records when and how it went."""
    deliveries = dict(_deliveries(document))
    current = deliveries.get(endpoint_id)
    delivery = dict(current) if isinstance(current, dict) else {"status": SKIPPED, "attempts": 0}
    delivery.update(lastAttemptAt=at, lastHttpStatus=attempt.http_status)
    fields: dict[str, Any] = {"attempts": _count(document.get("attempts")) + 1}
    if attempt.delivered:
        delivery["status"] = DELIVERED
        delivery.pop("nextAttemptAt", None)
        reached = [e for e in document.get("deliveredTo") or () if isinstance(e, str)]
        fields["deliveredTo"] = list(dict.fromkeys([*reached, endpoint_id]))
    deliveries[endpoint_id] = delivery
    fields.update(deliveries=deliveries, dueAt=due_at(deliveries))
    if endpoint_id == document.get("deliveryEndpointId") or current is None:
        fields.update(deliveryEndpointId=endpoint_id, deliveryStatus=delivery["status"])
    if all(d.get("status") == DELIVERED for d in deliveries.values() if isinstance(d, dict)):
        fields["deliveredAt"] = document.get("deliveredAt") or at
    return fields


def due_at(deliveries: Mapping[str, Any]) -> Any:
    """The earliest ``nextAttemptAt`` of a pending delivery, or ``REMOVE`` when none is."""
    due = [
        d["nextAttemptAt"]
        for d in deliveries.values()
        if isinstance(d, dict)
        and d.get("status") == PENDING
        and isinstance(d.get("nextAttemptAt"), datetime)
    ]
    return min(due) if due else REMOVE


def _deliveries(document: Mapping[str, Any]) -> Mapping[str, Any]:
    deliveries = document.get("deliveries")
    return deliveries if isinstance(deliveries, dict) else {}


def _count(value: object) -> int:
    return value if type(value) is int else 0
