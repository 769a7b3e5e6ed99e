"""Webhook endpoint records and test events, pure: what is stored, shown and sent.

webhooks-api.md §3-5. One endpoint per (apiKeyId, mode); a rotation keeps the
previous secret for ``ROTATION_OVERLAP`` so every delivery meanwhile is signed
with both. The clock and the random parts (secrets, ids) are passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from .events import FAILED_EVENT, RANKS, rfc3339
from .webhook_requests import ConfigureRequest

ROTATION_OVERLAP = timedelta(hours=24)
LIVE = "live"
# How events are signed: Svix's scheme, whichever sink sends them.
SIGNING = "svix"
SVIX_ENVIRONMENTS = {"live": "production", "test": "test"}
_STATUS_OF = {0: "queued", 1: "processing"}


def mode_of(document: Mapping[str, Any]) -> str:
    """An endpoint's mode; documents from before modes existed are live."""
    mode = document.get("mode")
    return mode if isinstance(mode, str) else LIVE


def configured(
    existing: Mapping[str, Any] | None,
    request: ConfigureRequest,
    api_key_id: str,
    by_key_id: str | None,
    now: datetime,
    new_secret: str,
) -> tuple[dict[str, Any], bool]:
    """The endpoint document after a configure call, and whether ``new_secret`` was used.

    A new endpoint gets ``new_secret``; an existing one keeps its secret unless
    the request rotates it, in which case the old one signs too until
    ``now + ROTATION_OVERLAP``.
    """
    document: dict[str, Any] = dict(existing or {})
    document.update(
        apiKeyId=api_key_id,
        mode=request.mode,
        url=request.url.text,
        eventTypes=list(request.event_types),
        disabled=False,
        updatedAt=now,
        updatedByKeyId=by_key_id,
    )
    document.setdefault("createdAt", now)
    # Configuring enables it again (delivery-contract.md §3): its health starts afresh.
    for health in ("disabledReason", "disabledAt", "failingSince"):
        document.pop(health, None)
    if existing is None or not isinstance(existing.get("secret"), str):
        document["secret"] = new_secret
        return document, True
    if request.rotate_secret:
        document.update(
            secret=new_secret,
            previousSecret=existing["secret"],
            previousSecretExpiresAt=now + ROTATION_OVERLAP,
        )
        return document, True
    return document, False


def signing_secrets(document: Mapping[str, Any], now: datetime) -> tuple[str, ...]:
    """The secrets a delivery is signed with at ``now``: the current one, and the previous
    one while its overlap lasts."""
    current = document.get("secret")
    secrets = [current] if isinstance(current, str) else []
    previous = document.get("previousSecret")
    until = document.get("previousSecretExpiresAt")
    if isinstance(previous, str) and isinstance(until, datetime) and until > now:
        secrets.append(previous)
    return tuple(secrets)


def webhook_view(
    endpoint_id: str,
    document: Mapping[str, Any],
    shown_secret: str | None,
    svix_env: str | None = None,
) -> dict[str, Any]:
    """The ``webhook`` object of the configure answer; the secret only when just created."""
    view: dict[str, Any] = {
        "apiKeyId": document.get("apiKeyId"),
        "mode": mode_of(document),
        "endpointId": endpoint_id,
        "url": document.get("url"),
        "eventTypes": list(document.get("eventTypes") or []),
        "signing": SIGNING,
        "disabled": document.get("disabled", False) is not False,
        "updatedByKeyId": document.get("updatedByKeyId"),
        "createdAt": _time(document.get("createdAt")),
        "updatedAt": _time(document.get("updatedAt")),
    }
    if svix_env is not None:
        view["svixEnv"] = svix_env
    if shown_secret is not None:
        view["signingSecret"] = shown_secret
    return view


def test_payload(
    event_type: str,
    api_key_id: str,
    event_id: str,
    now: datetime,
    suffix: str,
    sample: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """A sample event of ``event_type`` (events-contract.md §1), ``sample`` merged over it."""
    rank = RANKS[event_type]
    failed = event_type == FAILED_EVENT
    status = "error" if failed else _STATUS_OF.get(rank, "complete")
    payload: dict[str, Any] = {
        "eventType": event_type,
        "eventId": event_id,
        "createdAt": rfc3339(now),
        "apiKeyId": api_key_id,
        "apiProjectId": f"proj_test_{suffix}",
        "generationId": f"gen_test_{suffix}",
        "status": status,
        "hasVideo": False,
        "modelKey": "diffio-4.6-flash",
        "error": "Sample failure (test event)" if failed else None,
        "errorDetails": "This is a test event; no generation failed." if failed else None,
    }
    payload.update(sample or {})
    return payload


def _time(value: object) -> str | None:
    return rfc3339(value) if isinstance(value, datetime) else None
