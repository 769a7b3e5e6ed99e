"""Endpoint health, pure: when an attempt's outcome disables an endpoint (delivery-contract §3).

A 410 disables it at once (``gone``). An endpoint whose attempts have all
failed since ``failingSince`` for ``WEBHOOK_DISABLE_AFTER_HOURS`` is disabled
(``failing``). A success clears ``failingSince``. Only transitions are written:
``change`` answers the fields to write, or nothing; ``None`` values mean "remove".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from .deliveries import GONE_STATUS
from .endpoints import is_enabled

GONE, FAILING = "gone", "failing"
DISABLE_AFTER = timedelta(hours=120)


def is_disabled(document: Mapping[str, Any]) -> bool:
    """``disabled`` missing or false is enabled; any other value fails closed."""
    return not is_enabled(document)


def change(
    document: Mapping[str, Any],
    ok: bool,
    http_status: int | None,
    now: datetime,
    disable_after: timedelta = DISABLE_AFTER,
) -> dict[str, Any] | None:
    """The endpoint fields an attempt's outcome changes, or None when it changes nothing.

    Only an answer or a failure at the client's side counts (never ours).
    """
    if is_disabled(document):
        return None
    since = document.get("failingSince")
    if ok:
        return {"failingSince": None} if since is not None else None
    if http_status == GONE_STATUS:
        return disabled(GONE, now)
    if not isinstance(since, datetime):
        return {"failingSince": now}
    if now - since >= disable_after:
        return disabled(FAILING, now)
    return None


def disabled(reason: str, now: datetime) -> dict[str, Any]:
    return {"disabled": True, "disabledReason": reason, "disabledAt": now, "failingSince": None}


def enabled() -> dict[str, Any]:
    """What ``configure`` writes: enabled again, its failures forgotten."""
    return {"disabled": False, "disabledReason": None, "disabledAt": None, "failingSince": None}
