"""What the delivery log shows, pure: event, attempt and endpoint documents as the answers' objects.

delivery-contract.md §4, over the documents of docs/delivery-storage.md. Only
named fields are copied out, so nothing else a document holds (a lease, a
secret, an endpoint's URL) can reach an answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .events import rfc3339

ATTEMPTS = "webhookAttempts"
# What a delivery reads as when the event has none to the key's endpoint.
SKIPPED = "skipped"
MAX_RESPONSE_CHARS = 1024
ATTEMPT_FIELDS = ("attemptId", "endpointId", "trigger", "status", "httpStatus", "error")


def event_view(document: Mapping[str, Any]) -> dict[str, Any]:
    """One entry of ``list_events``: the event and its delivery to the key's endpoint."""
    payload = document.get("payload")
    payload = payload if isinstance(payload, dict) else {}
    entry: dict[str, Any] = {
        "eventId": document.get("eventId"),
        "eventType": document.get("eventType"),
        "createdAt": time_text(document.get("createdAt")),
        "apiProjectId": _text(document.get("apiProjectId"), payload.get("apiProjectId")),
        "generationId": _text(document.get("generationId"), payload.get("generationId")),
        "delivery": delivery_view(document),
        "payload": payload,
    }
    if document.get("test") is True:
        entry["test"] = True
    return entry


def delivery_view(document: Mapping[str, Any]) -> dict[str, Any]:
    """The event's delivery to the (key, mode) endpoint, or a ``skipped`` one without it."""
    endpoint_id = document.get("deliveryEndpointId")
    deliveries = document.get("deliveries")
    delivery = deliveries.get(endpoint_id) if isinstance(deliveries, dict) and endpoint_id else None
    if not isinstance(delivery, dict):
        status = document.get("deliveryStatus")
        return {
            "endpointId": None,
            "status": status if isinstance(status, str) else SKIPPED,
            "attempts": 0,
            "lastAttemptAt": None,
            "lastHttpStatus": None,
        }
    attempts = delivery.get("attempts")
    view: dict[str, Any] = {
        "endpointId": endpoint_id,
        "status": delivery.get("status"),
        "attempts": attempts if isinstance(attempts, int) else 0,
        "lastAttemptAt": time_text(delivery.get("lastAttemptAt")),
        "lastHttpStatus": _int_or_none(delivery.get("lastHttpStatus")),
    }
    if delivery.get("status") == "pending":
        view["nextAttemptAt"] = time_text(delivery.get("nextAttemptAt"))
    return view


def attempt_view(document: Mapping[str, Any]) -> dict[str, Any]:
    """One entry of ``list_attempts``."""
    view = {name: document.get(name) for name in ATTEMPT_FIELDS}
    view["httpStatus"] = _int_or_none(view["httpStatus"])
    view["at"] = time_text(document.get("at"))
    view["durationMs"] = _int_or_none(document.get("durationMs"))
    response = document.get("response")
    view["response"] = response[:MAX_RESPONSE_CHARS] if isinstance(response, str) else None
    return view


def endpoint_view(
    endpoint_id: str | None, document: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """``list_events``' ``endpoint``: the (key, mode) endpoint's state, or ``None``."""
    if endpoint_id is None or document is None:
        return None
    reason = document.get("disabledReason")
    return {
        "endpointId": endpoint_id,
        "disabled": document.get("disabled") is True,
        "disabledReason": reason if isinstance(reason, str) else None,
        "disabledAt": time_text(document.get("disabledAt")),
    }


def time_text(value: object) -> str | None:
    return rfc3339(value) if isinstance(value, datetime) else None


def _text(value: object, fallback: object) -> str | None:
    for candidate in (value, fallback):
        if isinstance(candidate, str):
            return candidate
    return None


def _int_or_none(value: object) -> int | None:
    return value if type(value) is int else None
