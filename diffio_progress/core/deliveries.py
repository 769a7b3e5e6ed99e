"""Deliveries, pure: one (event, endpoint) delivery's states and transitions, due times, order.

delivery-contract.md §1-2 and docs/delivery-storage.md. A delivery is
``pending`` (due at ``nextAttemptAt``), ``delivered``, ``failed`` (its schedule
ran out, or the endpoint answered 410) or ``skipped`` (the endpoint is disabled,
gone, or its URL is refused). An outbox document keeps one per endpoint in its
``deliveries`` map, and ``dueAt``, the earliest due time of its pending ones,
only while one is pending: the relay's query finds exactly those.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from .retry_schedule import Schedule, next_attempt_at

PENDING, DELIVERED, FAILED, SKIPPED = "pending", "delivered", "failed", "skipped"
STATUSES = (PENDING, DELIVERED, FAILED, SKIPPED)
EVENT_TRIGGER, RELAY_TRIGGER, RECOVER_TRIGGER = "event", "relay", "recover"
# What an attempt's outcome counts as in the relay's answer.
RETRIED = "retried"
GONE_STATUS = 410
# The key of the one delivery of an event handed to Svix (WEBHOOK_SINK=svix).
SVIX_DELIVERY = "svix"


def pair_endpoint_id(api_key_id: str, mode: str) -> str:
    """The id of the endpoint ``configure`` keeps for (``api_key_id``, ``mode``)."""
    digest = hashlib.sha256(f"{api_key_id}\x00{mode}".encode("utf-8", "surrogatepass"))
    return "ep_" + digest.hexdigest()[:24]


@dataclass(frozen=True)
class Delivery:
    """One event's delivery to one endpoint, as its ``deliveries`` map entry holds it."""

    status: str
    attempts: int = 0
    last_attempt_at: datetime | None = None
    last_http_status: int | None = None
    next_attempt_at: datetime | None = None
    trigger: str = EVENT_TRIGGER

    def is_due(self, now: datetime) -> bool:
        return self.status == PENDING and (
            self.next_attempt_at is None or self.next_attempt_at <= now
        )

    def to_map(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "status": self.status,
            "attempts": self.attempts,
            "lastAttemptAt": self.last_attempt_at,
            "lastHttpStatus": self.last_http_status,
            "trigger": self.trigger,
        }
        if self.status == PENDING:
            fields["nextAttemptAt"] = self.next_attempt_at
        return fields


def scheduled(now: datetime) -> Delivery:
    """A new delivery: pending, due at once, its first attempt the event function's."""
    return Delivery(PENDING, next_attempt_at=now)


def skipped() -> Delivery:
    return Delivery(SKIPPED)


def read_delivery(value: object) -> Delivery | None:
    """A ``deliveries`` map entry as a delivery; anything malformed is ``None``."""
    if not isinstance(value, Mapping) or value.get("status") not in STATUSES:
        return None
    attempts = value.get("attempts")
    last_at, next_at = value.get("lastAttemptAt"), value.get("nextAttemptAt")
    http_status = value.get("lastHttpStatus")
    trigger = value.get("trigger")
    return Delivery(
        str(value["status"]),
        attempts if isinstance(attempts, int) else 0,
        last_at if isinstance(last_at, datetime) else None,
        http_status if isinstance(http_status, int) else None,
        next_at if isinstance(next_at, datetime) else None,
        trigger if isinstance(trigger, str) else RELAY_TRIGGER,
    )


def read_deliveries(value: object) -> dict[str, Delivery]:
    if not isinstance(value, Mapping):
        return {}
    found = {str(k): read_delivery(v) for k, v in value.items()}
    return {k: v for k, v in found.items() if v is not None}


@dataclass(frozen=True)
class Attempt:
    """How one attempt went: ``ok`` (a 2xx, or Svix took it), or the failure it was."""

    ok: bool
    http_status: int | None = None
    # When a 429/503's Retry-After allows the next attempt (retry_schedule.retry_after).
    not_before: datetime | None = None


def after_attempt(
    delivery: Delivery, attempt: Attempt, now: datetime, schedule: Schedule
) -> Delivery:
    """The delivery once ``attempt`` (made at ``now``) is counted, by the schedule."""
    attempts = delivery.attempts + 1
    done = replace(
        delivery,
        attempts=attempts,
        last_attempt_at=now,
        last_http_status=attempt.http_status,
        next_attempt_at=None,
    )
    if attempt.ok:
        return replace(done, status=DELIVERED)
    if attempt.http_status == GONE_STATUS:
        return replace(done, status=FAILED)
    due = next_attempt_at(schedule, attempts, now, attempt.not_before)
    if due is None:
        return replace(done, status=FAILED)
    return replace(done, status=PENDING, next_attempt_at=due, trigger=RELAY_TRIGGER)


def outcome_of(after: Delivery) -> str:
    """What an attempt counts as: ``delivered``, ``failed`` (for good) or ``retried``."""
    return RETRIED if after.status == PENDING else after.status


def due_at(deliveries: Iterable[Delivery]) -> datetime | None:
    """The earliest due time among pending deliveries; None when none is pending."""
    times = [d.next_attempt_at for d in deliveries if d.status == PENDING and d.next_attempt_at]
    return min(times) if times else None


def all_delivered(deliveries: Mapping[str, Delivery]) -> bool:
    return bool(deliveries) and all(d.status == DELIVERED for d in deliveries.values())


def delivery_summary(
    deliveries: Mapping[str, Delivery], api_key_id: str | None, mode: str
) -> tuple[str | None, str]:
    """``deliveryEndpointId`` and ``deliveryStatus``: the key's configured endpoint's delivery."""
    if api_key_id is None:
        return None, SKIPPED
    endpoint_id = pair_endpoint_id(api_key_id, mode)
    delivery = deliveries.get(endpoint_id) or deliveries.get(SVIX_DELIVERY)
    if delivery is None:
        return None, SKIPPED
    return (endpoint_id if endpoint_id in deliveries else None), delivery.status


def blocked_until(
    lower: Iterable[Mapping[str, Delivery]], endpoint_id: str, now: datetime
) -> datetime | None:
    """Whether a lower-ranked event's delivery to ``endpoint_id`` is still pending (§1.3).

    None: nothing lower is pending, the endpoint may get the event. Otherwise the
    time the lowest pending one is due (``now`` when it is due already).
    """
    times = [
        max(d.next_attempt_at or now, now)
        for deliveries in lower
        if (d := deliveries.get(endpoint_id)) is not None and d.status == PENDING
    ]
    return min(times) if times else None


def plan(
    deliveries: Mapping[str, Delivery], lower: list[Mapping[str, Delivery]], now: datetime
) -> tuple[list[str], dict[str, Delivery]]:
    """Which due deliveries of an event to attempt now, and which to put off (rank order).

    A due delivery whose endpoint still waits for a lower-ranked event of the
    generation is not attempted; when that one is due later, this one is moved
    to then (no attempt counted), so the relay does not find it due meanwhile.
    """
    targets, put_off = [], {}
    for endpoint_id, delivery in sorted(deliveries.items()):
        if not delivery.is_due(now):
            continue
        until = blocked_until(lower, endpoint_id, now)
        if until is None:
            targets.append(endpoint_id)
        elif until > now:
            put_off[endpoint_id] = replace(delivery, next_attempt_at=until)
    return targets, put_off


def attempt_trigger(delivery: Delivery, caller: str) -> str:
    """What an attempt is recorded as: a recovered delivery's stays ``recover``."""
    return RECOVER_TRIGGER if delivery.trigger == RECOVER_TRIGGER else caller
