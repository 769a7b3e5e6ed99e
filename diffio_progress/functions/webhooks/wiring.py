"""The webhooks functions built once per process from the environment: what main.py calls."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from .. import logs
from ..clock import utcnow
from ..config import SVIX_API_TOKEN, SVIX_TEST_API_TOKEN, WEBHOOK_SINK, Settings
from ..events.pinned_post import PinnedPoster
from ..firestore import FirestoreConnection
from ..once_per_process import OncePerProcess
from ..secret_box import build_secret_box
from .direct_log import DirectLog
from .endpoint_store import EndpointStore, new_signing_secret
from .handlers import ConfigureHandler, TestEventHandler
from .keys import KeyStore
from .log_handlers import (
    DeliveryLog,
    ListAttemptsHandler,
    ListEventsHandler,
    LogHandler,
    RecoverHandler,
    ResendHandler,
)
from .log_store import DeliveryLogStore
from .sinks import DirectWebhooks, WebhookSink


def build_sink(settings: Settings, poster: PinnedPoster) -> WebhookSink | None:
    """The sink WEBHOOK_SINK names; ``off`` is ``None`` (the functions answer 503)."""
    if settings.webhook_sink == "direct":
        endpoints = EndpointStore(
            FirestoreConnection.from_settings(settings, settings.webhook_database),
            build_secret_box(settings),
        )
        return DirectWebhooks(endpoints, poster, new_signing_secret)
    if settings.webhook_sink == "svix":
        if not settings.svix_api_token or not settings.svix_test_api_token:
            raise ValueError(
                f"{WEBHOOK_SINK}=svix needs {SVIX_API_TOKEN} and {SVIX_TEST_API_TOKEN}"
            )
        from .svix_sinks import SvixWebhooks

        return SvixWebhooks(
            settings.svix_api_token, settings.svix_test_api_token, settings.svix_server_url
        )
    return None


def build_log(settings: Settings, sink: WebhookSink | None) -> DeliveryLog | None:
    """The delivery log of ``sink``; a direct sink then records each test event in it."""
    if isinstance(sink, DirectWebhooks):
        return build_direct_log(settings, sink)
    if sink is not None:
        from .svix_log import SvixLog
        from .svix_sinks import SvixWebhooks

        assert isinstance(sink, SvixWebhooks)
        return SvixLog(sink, settings.webhook_log_days)
    return None


def build_direct_log(settings: Settings, sink: DirectWebhooks) -> DirectLog:
    """The direct sink's log on the sink's ``webhooks`` connection; it records test events."""
    # Generation events are leased, sent and marked as the event function does it.
    from ..events.direct_sink import DirectSink
    from ..events.marks import Marker
    from ..events.outbox import Outbox
    from ..events.wiring import build_sink as build_event_sink

    connection = sink.endpoints.connection
    sender = build_event_sink(settings, connection, sink.poster)
    assert isinstance(sender, DirectSink)
    outbox = Outbox(connection, utcnow)
    marker = Marker(connection, settings.webhook_log_days)
    store = DeliveryLogStore(connection)
    direct = DirectLog(store, sink, (outbox, sender, marker), settings.webhook_log_days)
    sink.recorder = direct.record_test
    return direct


def _parts(
    settings: Settings, poster: PinnedPoster | None
) -> tuple[KeyStore, WebhookSink | None, PinnedPoster]:
    logs.configure()
    poster = poster or PinnedPoster(allow_private=settings.webhook_allow_private_urls)
    keys = KeyStore(FirestoreConnection.from_settings(settings))
    sink = build_sink(settings, poster)
    build_log(settings, sink)  # test events are recorded in the log
    return keys, sink, poster


def build_log_handler(
    kind: type[LogHandler], settings: Settings, poster: PinnedPoster | None = None
) -> LogHandler:
    """One of the four delivery-log functions as deployed; tests pass a ``poster``."""
    keys, sink, _ = _parts(settings, poster)
    return kind(settings, keys, build_log(settings, sink))


def build_configure_handler(
    settings: Settings, poster: PinnedPoster | None = None
) -> ConfigureHandler:
    """The configure function as deployed; tests pass a ``poster`` with their own resolver."""
    return ConfigureHandler(settings, *_parts(settings, poster))


def build_test_event_handler(
    settings: Settings, poster: PinnedPoster | None = None
) -> TestEventHandler:
    """The send_test_event function as deployed; tests pass a ``poster`` of their own."""
    return TestEventHandler(settings, *_parts(settings, poster))


_configure: OncePerProcess[ConfigureHandler] = OncePerProcess(build_configure_handler)
_test_event: OncePerProcess[TestEventHandler] = OncePerProcess(build_test_event_handler)


def default_configure_handler(environ: Mapping[str, str] | None = None) -> ConfigureHandler:
    return _configure.get(environ)


def default_test_event_handler(environ: Mapping[str, str] | None = None) -> TestEventHandler:
    return _test_event.get(environ)


_LOG_KINDS: dict[str, type[LogHandler]] = {
    "list_events": ListEventsHandler,
    "list_attempts": ListAttemptsHandler,
    "recover": RecoverHandler,
    "resend": ResendHandler,
}
_log_handlers: dict[str, OncePerProcess[LogHandler]] = {
    name: OncePerProcess(partial(build_log_handler, kind)) for name, kind in _LOG_KINDS.items()
}


def default_log_handler(name: str, environ: Mapping[str, str] | None = None) -> LogHandler:
    """The process-wide handler of ``webhooks/<name>`` (list_events, ..., resend)."""
    return _log_handlers[name].get(environ)


def reset_default_webhook_handlers() -> None:
    """Forget the process-wide handlers (tests change the environment between cases)."""
    resets: list[ConfigureHandler | TestEventHandler | LogHandler | None]
    resets = [_configure.reset(), _test_event.reset()]
    resets += [once.reset() for once in _log_handlers.values()]
    for dropped in resets:
        if dropped is not None:
            dropped.close()
