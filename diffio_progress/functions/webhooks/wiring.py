"""The two webhooks functions built once per process from the environment: what main.py calls."""

from __future__ import annotations

from collections.abc import Mapping

from .. import logs
from ..config import SVIX_API_TOKEN, SVIX_TEST_API_TOKEN, WEBHOOK_SINK, Settings
from ..events.pinned_post import PinnedPoster
from ..firestore import FirestoreConnection
from ..once_per_process import OncePerProcess
from ..secret_box import build_secret_box
from .endpoint_store import EndpointStore, new_signing_secret
from .handlers import ConfigureHandler, TestEventHandler
from .keys import KeyStore
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


def _parts(
    settings: Settings, poster: PinnedPoster | None
) -> tuple[KeyStore, WebhookSink | None, PinnedPoster]:
    logs.configure()
    poster = poster or PinnedPoster(allow_private=settings.webhook_allow_private_urls)
    keys = KeyStore(FirestoreConnection.from_settings(settings))
    return keys, build_sink(settings, poster), poster


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


def reset_default_webhook_handlers() -> None:
    """Forget the process-wide handlers (tests change the environment between cases)."""
    for dropped in (_configure.reset(), _test_event.reset()):
        if dropped is not None:
            dropped.close()
