"""`relay_pending_deliveries` over HTTP: a POST runs the relay once and answers its counters."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from .. import logs
from ..clock import utcnow
from ..config import Settings
from ..events.delivery import Deliverer
from ..events.marks import Marker
from ..events.outbox import Outbox
from ..events.pinned_post import PinnedPoster
from ..events.wiring import build_sink
from ..firestore import FirestoreConnection
from ..once_per_process import OncePerProcess
from ..scheduled import ScheduledHandler
from .relay import Relay

# One relay call's sends to one key's endpoints all end by then (the function's timeout is longer).
RELAY_CALL_DEADLINE_SECONDS = 240.0


class RelayHandler(ScheduledHandler):
    """One relay pass per call. An outage loses nothing: what was due stays due."""

    def __init__(self, settings: Settings, relay: Relay) -> None:
        super().__init__(settings, relay)
        self.relay = relay

    def close(self) -> None:
        """Release the sink's connections (a deployed instance keeps them for its life)."""
        if self.relay.deliverer is not None:
            self.relay.deliverer.sink.close()


def build_relay_handler(
    settings: Settings,
    connection: FirestoreConnection | None = None,
    poster: PinnedPoster | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> RelayHandler:
    """The handler as deployed; tests and the benchmark pass a connection, poster or clock.

    ``connection`` is the ``webhooks`` database: the relay reads nothing of ``(default)``.
    """
    logs.configure()
    connection = connection or FirestoreConnection.from_settings(
        settings, settings.webhook_database
    )
    sink = build_sink(settings, connection, poster, RELAY_CALL_DEADLINE_SECONDS)
    outbox = Outbox(connection, clock)
    marker = Marker(connection, settings.webhook_log_days)
    # Never waits for another sender's lease: that generation waits for the next call.
    deliverer = (
        Deliverer(outbox, sink, marker, settings.retry_schedule, clock, patience_seconds=0)
        if sink is not None
        else None  # WEBHOOK_SINK=off schedules nothing: every call finds nothing due
    )
    return RelayHandler(settings, Relay(outbox, deliverer, settings.relay_batch, clock))


_default: OncePerProcess[RelayHandler] = OncePerProcess(build_relay_handler)


def default_relay_handler(environ: Mapping[str, str] | None = None) -> RelayHandler:
    """The process-wide handler, built on first use from the environment."""
    return _default.get(environ)


def reset_default_relay_handler() -> None:
    """Forget the process-wide handler (tests change the environment between cases)."""
    _default.reset()
