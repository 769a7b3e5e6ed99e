"""The local world's relay: `relay_pending_deliveries` served and called every few seconds."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from .world_reaper import serve_on_schedule

# Cloud Scheduler calls the deployed relay every minute; the local world is quicker.
DEFAULT_PERIOD = 5.0
# The local world's schedule: time compressed so that a receiver killed for a while gets what
# it missed within seconds of coming back (about 30 minutes of outage before a delivery fails).
LOCAL_SCHEDULE = ",".join(["1s", "2s", *["5s"] * 360])


def start_relay(
    stack: ExitStack, env: dict[str, str], host: str, period: float, say: Callable[[str], None]
) -> str:
    """Serve `relay_pending_deliveries` and call it every ``period`` seconds; its URL."""
    return serve_on_schedule(stack, "relay_pending_deliveries", env, host, period, say, _relayed)


def _relayed(counts: dict[str, Any]) -> str | None:
    if counts.get("delivered") or counts.get("failed"):
        return (
            f"Relay: {counts.get('delivered', 0)} delivered, {counts.get('failed', 0)} failed "
            f"for good, {counts.get('retried', 0)} to retry."
        )
    return None


def instructions(url: str, period: float) -> str:
    """What the relay does, and how to see it: stop the receiver, start it again."""
    return (
        f"The relay ({url}) sends due deliveries every {period:g} s: a receiver that was down\n"
        "gets what it missed, in order, within seconds of coming back."
    )
