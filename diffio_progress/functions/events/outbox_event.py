"""One outbox document as an event: what every sender reads, and its ``dueAt`` as stored."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from google.cloud import firestore

from diffio_progress.core.deliveries import Delivery, due_at, read_deliveries
from diffio_progress.core.events import EVENT_ID_PREFIX, RANKS

log = logging.getLogger("diffio_progress.functions.events.outbox")


def new_event_id() -> str:
    """``evt_`` and 128 random bits as 32 hex characters (the contract asks for 24 or more)."""
    return EVENT_ID_PREFIX + secrets.token_hex(16)


@dataclass(frozen=True)
class OutboxEvent:
    """One recorded event, as its outbox document holds it, and when it was last written."""

    api_project_id: str
    generation_id: str
    event_type: str
    event_id: str
    payload: dict[str, Any]
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    update_time: Any = None  # the document's update time: the precondition of a claim
    lease_until: datetime | None = None
    created_at: datetime | None = None

    @property
    def rank(self) -> int:
        return RANKS[self.event_type]

    @property
    def api_key_id(self) -> str | None:
        key = self.payload.get("apiKeyId")
        return key if isinstance(key, str) and key else None

    @property
    def parent(self) -> tuple[str, str]:
        return self.api_project_id, self.generation_id

    def leased(self, now: datetime) -> bool:
        return self.lease_until is not None and self.lease_until > now


def read_event(
    api_project_id: str,
    generation_id: str,
    event_type: str,
    document: Mapping[str, Any],
    update_time: Any = None,
) -> OutboxEvent | None:
    """An outbox document as an event; one that lost its id or payload cannot be delivered."""
    event_id, payload = document.get("eventId"), document.get("payload")
    if not isinstance(event_id, str) or not isinstance(payload, dict) or event_type not in RANKS:
        log.warning(
            "outbox event %s is malformed; it counts as recorded but is not delivered", event_type
        )
        return None
    until, created = document.get("deliveringUntil"), document.get("createdAt")
    return OutboxEvent(
        api_project_id,
        generation_id,
        event_type,
        event_id,
        payload,
        read_deliveries(document.get("deliveries")),
        update_time,
        until if isinstance(until, datetime) else None,
        created if isinstance(created, datetime) else None,
    )


def from_snapshot(snapshot: Any) -> OutboxEvent | None:
    """A snapshot of ``.../generations/{g}/events/{type}`` as an event (the relay's query).

    Any other ``events`` document (a test event's, say) is not one: None, with a warning,
    so one stray document never stops the relay's pass for everybody.
    """
    parts = snapshot.reference.path.split("/")
    if len(parts) != 6 or parts[0] != "apiProjects" or parts[2] != "generations":
        log.warning(
            "%s is not a generation's outbox event; the relay leaves it",
            snapshot.reference.path,
            extra={"fields": {"document": snapshot.reference.path}},
        )
        return None
    return read_event(parts[1], parts[3], parts[5], snapshot.to_dict() or {}, snapshot.update_time)


def due_fields(deliveries: Mapping[str, Delivery]) -> dict[str, Any]:
    """``dueAt`` as stored: present only while a delivery is pending (the relay's index)."""
    due = due_at(deliveries.values())
    return {"dueAt": due if due is not None else firestore.DELETE_FIELD}
