"""The event function built once per process from the environment: what main.py calls."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from werkzeug.exceptions import ServiceUnavailable

from diffio_progress.core.errors import StoreUnavailable

from .. import logs
from ..clock import utcnow
from ..config import SVIX_API_TOKEN, WEBHOOK_SINK, Settings
from ..firestore import FirestoreConnection
from ..once_per_process import OncePerProcess
from ..store import FirestoreStore
from .handler import EventHandler
from .outbox import Outbox
from .pinned_post import PinnedPoster
from .sinks import CALL_DEADLINE_SECONDS, Sink


def on_generation_written(event: Any) -> None:
    """Handle one Eventarc CloudEvent; a failure to record answers 503, and Eventarc retries.

    An HTTP error rather than an exception: Eventarc retries any non-2xx, and
    functions-framework would print a stack trace for an exception on every
    retry, while the handler has already logged the one line that explains it.
    """
    try:
        default_event_handler()(event)
    except StoreUnavailable:
        raise ServiceUnavailable("Not recorded yet; retry later.") from None


def default_event_handler(environ: Mapping[str, str] | None = None) -> EventHandler:
    """The process-wide handler, built on first use from the environment."""
    return _default.get(environ)


def build_event_handler(
    settings: Settings,
    connection: FirestoreConnection | None = None,
    poster: PinnedPoster | None = None,
    webhooks: FirestoreConnection | None = None,
) -> EventHandler:
    """The handler as deployed; tests pass counting connections or a ``poster`` of their own.

    ``connection`` reads the generation (``(default)``); ``webhooks`` holds the
    outbox, the endpoints and the attempts (docs/delivery-storage.md). An outage
    of either before the event is recorded is ``StoreUnavailable``: a 503, and a retry.
    """
    logs.configure()
    connection = connection or FirestoreConnection.from_settings(settings)
    webhooks = webhooks or FirestoreConnection.from_settings(settings, settings.webhook_database)
    outbox = Outbox(webhooks, utcnow)
    sink = build_sink(settings, webhooks, poster)
    return EventHandler(settings, FirestoreStore(connection), outbox, sink)


def build_sink(
    settings: Settings,
    connection: FirestoreConnection,
    poster: PinnedPoster | None = None,
    call_deadline_seconds: float = CALL_DEADLINE_SECONDS,
) -> Sink | None:
    """The sink WEBHOOK_SINK names; ``off`` records only. ``connection``: the webhooks database."""
    if settings.webhook_sink == "svix":
        if not settings.svix_api_token:
            raise ValueError(f"{WEBHOOK_SINK}=svix needs {SVIX_API_TOKEN}")
        from .svix_sink import SvixSink

        return SvixSink(settings.svix_api_token, settings.svix_server_url)
    if settings.webhook_sink == "direct":
        from ..secret_box import build_secret_box
        from .direct_sink import DirectSink

        poster = poster or PinnedPoster(allow_private=settings.webhook_allow_private_urls)
        disable_after = timedelta(hours=settings.webhook_disable_after_hours)
        box = build_secret_box(settings)
        return DirectSink(connection, poster, box, utcnow, call_deadline_seconds, disable_after)
    return None


_default: OncePerProcess[EventHandler] = OncePerProcess(build_event_handler)


def reset_default_event_handler() -> None:
    """Forget the process-wide handler (tests change the environment between cases)."""
    _default.reset()
