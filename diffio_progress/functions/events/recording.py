"""What a new event's outbox document holds: payload, deliveries due at once, the log's fields.

docs/delivery-storage.md: beyond the events contract's fields, each event
carries its key, its ids, ``rank``, ``expiresAt`` (the TTL), its ``deliveries``
(one per endpoint that should get it, pending and due at once, or skipped),
the sparse ``dueAt`` while one is pending, and the configured endpoint's
delivery as ``deliveryEndpointId``/``deliveryStatus``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from diffio_progress.core.deliveries import Delivery, delivery_summary, due_at
from diffio_progress.core.events import build_payload, kind_of
from diffio_progress.core.webhook_records import LIVE

from .outbox import NewEvent


def new_event(
    body: Mapping[str, Any],
    generation: Mapping[str, Any],
    event_id: str,
    now: datetime,
    deliveries: dict[str, Delivery],
    log_days: float,
) -> NewEvent:
    """The event ``body``'s status stands for, with ``deliveries``, ready to create."""
    kind = kind_of(body["status"])
    payload = build_payload(body, generation, event_id, now)
    api_key_id = payload.get("apiKeyId")
    endpoint_id, status = delivery_summary(deliveries, api_key_id, LIVE)
    fields: dict[str, Any] = {
        "eventId": event_id,
        "eventType": kind.event_type,
        "payload": payload,
        "createdAt": now,
        "deliveredAt": None,
        "deliveredTo": [],
        "attempts": 0,
        "apiKeyId": api_key_id,
        "apiProjectId": body["apiProjectId"],
        "generationId": body["generationId"],
        "mode": LIVE,
        "rank": kind.rank,
        "expiresAt": now + timedelta(days=log_days),
        "deliveries": {k: d.to_map() for k, d in deliveries.items()},
        "deliveryEndpointId": endpoint_id,
        "deliveryStatus": status,
    }
    due = due_at(deliveries.values())
    if due is not None:
        fields["dueAt"] = due
    return NewEvent(kind, event_id, payload, deliveries, fields)
