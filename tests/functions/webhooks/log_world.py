"""Helpers of the delivery-log tests: events and attempts seeded as docs/delivery-storage.md lays
them out in the ``webhooks`` database."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from google.cloud import firestore

from diffio_progress.core.deliveries import pair_endpoint_id
from diffio_progress.core.events import RANKS

COMPLETED = "generation.completed"


def seed_event(
    db: firestore.Client,
    api_key_id: str,
    generation: str,
    *,
    event_type: str = COMPLETED,
    created: datetime | None = None,
    mode: str = "live",
    status: str = "delivered",
    endpoint: bool = True,
    test: bool = False,
    project: str = "proj-1",
) -> dict[str, Any]:
    """One recorded event of ``api_key_id``; its delivery to the key's endpoint is ``status``
    (``endpoint=False``: recorded when there was none, so ``skipped``)."""
    created = created or datetime.now(UTC)
    event_id = "evt_" + secrets.token_hex(16)
    endpoint_id = pair_endpoint_id(api_key_id, mode) if endpoint else None
    payload = {
        "eventType": event_type,
        "eventId": event_id,
        "apiKeyId": api_key_id,
        "apiProjectId": project,
        "generationId": generation,
    }
    document: dict[str, Any] = {
        "eventId": event_id,
        "eventType": event_type,
        "payload": payload,
        "createdAt": created,
        "deliveredAt": created if status == "delivered" else None,
        "deliveredTo": [endpoint_id] if status == "delivered" else [],
        "attempts": 1,
        "apiKeyId": api_key_id,
        "mode": mode,
        "rank": RANKS[event_type],
        "expiresAt": created + timedelta(days=30),
        "deliveries": {},
        "deliveryEndpointId": endpoint_id,
        "deliveryStatus": status if endpoint else "skipped",
    }
    if endpoint_id is not None:
        delivery: dict[str, Any] = {
            "status": status,
            "attempts": 1,
            "lastAttemptAt": created,
            "lastHttpStatus": 204 if status == "delivered" else 500,
            "trigger": "event",
        }
        if status == "pending":
            delivery["nextAttemptAt"] = created + timedelta(minutes=5)
            document["dueAt"] = delivery["nextAttemptAt"]
        document["deliveries"] = {endpoint_id: delivery}
    if test:
        document["test"] = True
        db.document("webhookTests", api_key_id, "events", event_id).set(document)
    else:
        document.update(apiProjectId=project, generationId=generation)
        db.document("apiProjects", project, "generations", generation, "events", event_type).set(
            document
        )
    return document


def seed_attempt(
    db: firestore.Client,
    event: dict[str, Any],
    at: datetime,
    trigger: str = "event",
    http_status: int | None = 500,
) -> str:
    attempt_id = "att_" + secrets.token_hex(16)
    delivered = http_status is not None and 200 <= http_status < 300
    db.collection("webhookAttempts").document(attempt_id).set(
        {
            "attemptId": attempt_id,
            "eventId": event["eventId"],
            "apiKeyId": event["apiKeyId"],
            "mode": event["mode"],
            "endpointId": event["deliveryEndpointId"],
            "at": at,
            "trigger": trigger,
            "status": "delivered" if delivered else "failed",
            "httpStatus": http_status,
            "error": None if delivered else f"HTTP {http_status}",
            "durationMs": 12,
            "response": "x" * 2000,
            "failureKind": None if delivered else "endpoint",
            "expiresAt": at + timedelta(days=30),
        }
    )
    return attempt_id


def ago(**delta: float) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)
