"""Recover and resend on one delivery, pure: the delivery each leaves, by core.deliveries' rules.

delivery-contract.md §5 on docs/delivery-storage.md's ``deliveries`` map.
Recover makes a ``failed`` or ``skipped`` delivery (or none: there was no
endpoint then) ``pending`` again, due at once, with a fresh schedule, its next
attempt recorded as ``recover``. A resend is one attempt outside the schedule:
delivered, it makes the delivery ``delivered`` whatever it was (no further
attempt is scheduled); failed, it changes only when and how it was last tried.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from .deliveries import DELIVERED, FAILED, PENDING, RECOVER_TRIGGER, SKIPPED, Delivery
from .log_views import MAX_RESPONSE_CHARS

RECOVERABLE = (FAILED, SKIPPED)
RESEND_TRIGGER, TEST_TRIGGER = "resend", "test"


def recovered(delivery: Delivery | None, now: datetime) -> Delivery | None:
    """The delivery made pending again by a recover at ``now``; ``None``: left alone."""
    if delivery is not None and delivery.status not in RECOVERABLE:
        return None
    fresh = Delivery(PENDING, next_attempt_at=now, trigger=RECOVER_TRIGGER)
    if delivery is None:
        return fresh
    return replace(
        fresh,
        last_attempt_at=delivery.last_attempt_at,
        last_http_status=delivery.last_http_status,
    )


def resent(delivery: Delivery | None, ok: bool, http_status: int | None, at: datetime) -> Delivery:
    """The delivery after a resend at ``at`` that was delivered (``ok``) or not."""
    before = delivery or Delivery(SKIPPED)
    tried = replace(before, last_attempt_at=at, last_http_status=http_status)
    if not ok:
        return tried
    return replace(tried, status=DELIVERED, next_attempt_at=None)


def sent_once(ok: bool, http_status: int | None, at: datetime) -> Delivery:
    """A test event's one delivery, sent as it was recorded: delivered or failed."""
    status = DELIVERED if ok else FAILED
    return Delivery(status, 1, at, http_status, trigger=TEST_TRIGGER)


def attempt_document(
    attempt_id: str,
    event: Mapping[str, Any],
    endpoint_id: str,
    trigger: str,
    outcome: Mapping[str, Any],
    at: datetime,
    log_days: float,
) -> dict[str, Any]:
    """A test event's ``webhookAttempts`` document (``outcome``: ``ok``, ``httpStatus``,
    ``error``, ``durationMs``, ``response``, ``failureKind``), with its TTL field."""
    ok = outcome.get("ok") is True
    response = outcome.get("response")
    document: dict[str, Any] = {
        "attemptId": attempt_id,
        "eventId": event.get("eventId"),
        "eventType": event.get("eventType"),
        "apiKeyId": event.get("apiKeyId"),
        "mode": event.get("mode"),
        "endpointId": endpoint_id,
        "at": at,
        "trigger": trigger,
        "status": DELIVERED if ok else FAILED,
        "httpStatus": outcome.get("httpStatus"),
        "error": outcome.get("error"),
        "durationMs": outcome.get("durationMs"),
        "response": response[:MAX_RESPONSE_CHARS] if isinstance(response, str) else None,
        "expiresAt": at + timedelta(days=log_days),
    }
    if not ok:
        document["failureKind"] = outcome.get("failureKind") or "endpoint"
    return document
