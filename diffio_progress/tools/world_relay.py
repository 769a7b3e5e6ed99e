"""The local world's relay: `relay_pending_deliveries` served and called every few seconds."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from . import emulator
from .processes import start_function, stop_group
from .world_reaper import call_every

# Cloud Scheduler calls the deployed relay every minute; the local world is quicker.
DEFAULT_PERIOD = 5.0
# The local world's schedule: time compressed so that a receiver killed for a while gets what
# it missed within seconds of coming back (about 30 minutes of outage before a delivery fails).
LOCAL_SCHEDULE = ",".join(["1s", "2s", *["5s"] * 360])
ROOT = Path(__file__).resolve().parents[2]


def start_relay(
    stack: ExitStack, env: dict[str, str], host: str, period: float, say: Callable[[str], None]
) -> str:
    """Serve `relay_pending_deliveries` and call it every ``period`` seconds; its URL."""
    port = emulator.free_port(host)
    log = stack.enter_context(
        tempfile.NamedTemporaryFile("w", prefix="diffio-relay-", suffix=".log")
    )
    process = start_function(
        "relay_pending_deliveries", ROOT / "main.py", port, env=env, stdout=log, host=host
    )
    stack.callback(stop_group, process)
    url = f"http://{host}:{port}"
    stop = threading.Event()
    caller = threading.Thread(
        target=call_every,
        args=(process, url, period, stop, say, "relay", _relayed),
        name="relay",
        daemon=True,
    )
    stack.callback(caller.join, 10)
    stack.callback(stop.set)
    caller.start()
    return url


def _relayed(counts: dict[str, Any]) -> str | None:
    if counts.get("delivered") or counts.get("failed"):
        return (
            f"Relay: {counts.get('delivered', 0)} delivered, {counts.get('failed', 0)} failed "
            f"for good, {counts.get('retried', 0)} to retry."
        )
    return None
