"""The ``svix`` sink of the webhooks API: endpoints and test events in Svix, with its library.

webhooks-api.md §3-4. Live and test modes are separate Svix environments (one
token each, one server URL). The application's ``uid`` is the ``apiKeyId``
(created on first use, as the event function does); the endpoint's ``uid`` is
the mode, and ``filterTypes`` lists the chosen event types. Svix holds the
secret and rotates it with its own 24-hour overlap.

Nothing half-written: each step is one Svix call that a retry repeats safely
(the application and endpoint are found again by their uids), and there is no
record elsewhere to keep in step: ``updatedByKeyId`` lives in the endpoint's
metadata. A Svix outage answers 503 (``StoreUnavailable``'s answer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import httpx

from diffio_progress.core.errors import StoreUnavailable
from diffio_progress.core.webhook_records import ROTATION_OVERLAP, SVIX_ENVIRONMENTS, webhook_view
from diffio_progress.core.webhook_requests import ConfigureRequest

from ..events.svix_sink import SvixSink
from .sinks import not_configured

_NOT_FOUND, _CONFLICT = 404, 409
TEST_TAG = "test"


class SvixWebhooks:
    """Endpoints in Svix, one environment per mode; safe to share across threads."""

    def __init__(self, live_token: str, test_token: str, server_url: str | None) -> None:
        self.environments = {
            "live": SvixSink(live_token, server_url),
            "test": SvixSink(test_token, server_url),
        }

    def close(self) -> None:
        for sink in self.environments.values():
            sink.close()

    def configure(
        self, request: ConfigureRequest, api_key_id: str, by_key_id: str | None, now: datetime
    ) -> dict[str, Any]:
        from svix.api import EndpointIn, EndpointSecretRotateIn, EndpointUpdate

        sink = self.environments[request.mode]
        svix = sink.client
        fields: dict[str, Any] = {
            "url": request.url.text,
            "uid": request.mode,
            "filter_types": list(request.event_types),
            "metadata": {"updatedByKeyId": by_key_id or ""},
            "disabled": False,
        }
        with outage():
            app_id = sink.application(api_key_id)
            existing = get_or_none(lambda: svix.endpoint.get(app_id, request.mode))
            created = existing is None
            if created:
                try:
                    endpoint = svix.endpoint.create(app_id, EndpointIn(**fields))
                except _http_errors() as error:
                    if error.status_code != _CONFLICT:
                        raise
                    created = False  # another call created it meanwhile: update that one
            if not created:
                endpoint = svix.endpoint.update(app_id, request.mode, EndpointUpdate(**fields))
            if request.rotate_secret and not created:
                grace = int(ROTATION_OVERLAP.total_seconds())
                svix.endpoint.rotate_secret(
                    app_id, endpoint.id, EndpointSecretRotateIn(grace_period_seconds=grace)
                )
            shown = None
            if created or request.rotate_secret:
                shown = svix.endpoint.get_secret(app_id, endpoint.id).key
        document = {
            "apiKeyId": api_key_id,
            "mode": request.mode,
            "url": endpoint.url,
            "eventTypes": list(endpoint.filter_types or request.event_types),
            "updatedByKeyId": (endpoint.metadata or {}).get("updatedByKeyId") or by_key_id,
            "createdAt": endpoint.created_at,
            "updatedAt": endpoint.updated_at,
        }
        return webhook_view(endpoint.id, document, shown, SVIX_ENVIRONMENTS[request.mode])

    def send_test(
        self,
        event_type: str,
        mode: str,
        api_key_id: str,
        payload: dict[str, Any],
        now: datetime,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """Svix sends it, later: only the one API call is waited for (the client's timeout)."""
        from svix.api import MessageCreateOptions, MessageIn

        sink = self.environments[mode]
        svix = sink.client
        with outage():
            app = get_or_none(lambda: svix.application.get(api_key_id))
            endpoint = get_or_none(lambda: svix.endpoint.get(app.id, mode)) if app else None
            types = (endpoint.filter_types or []) if endpoint else []
            if endpoint is None or endpoint.disabled or (types and event_type not in types):
                raise not_configured()
            message = svix.message.create(
                app.id,
                MessageIn(
                    event_type=event_type,
                    event_id=payload["eventId"],
                    payload=payload,
                    tags=[TEST_TAG],  # list_events shows it with "test": true
                ),
                MessageCreateOptions(idempotency_key=payload["eventId"]),
            )
        return {"svixMessageId": message.id}


def _http_errors() -> tuple[type[Any], ...]:
    from svix.exceptions import HttpError, HTTPValidationError

    return (HttpError, HTTPValidationError)


def get_or_none(read: Callable[[], Any]) -> Any:
    """``read()``, or ``None`` when Svix answers 404."""
    try:
        return read()
    except _http_errors() as error:
        if error.status_code == _NOT_FOUND:
            return None
        raise


@contextmanager
def outage() -> Iterator[None]:
    """Svix unreachable or failing (5xx): 503, as a Firestore outage is; the token never shown."""
    try:
        yield
    except httpx.HTTPError as error:
        raise StoreUnavailable(f"Svix unreachable: {type(error).__name__}") from None
    except _http_errors() as error:
        if error.status_code >= 500 or error.status_code == 429:
            raise StoreUnavailable(f"Svix answered HTTP {error.status_code}") from None
        raise
