"""Where the webhooks API puts endpoints and sends test events: the ``direct`` sink.

``svix_sinks.py`` is the other one. Both answer the same two calls, so the
handlers never ask which sink they have. The direct sink stores endpoints in the
``webhooks`` database and sends a test event itself, synchronously, under the
delivery's SSRF rules and deadline, reporting how the receiver answered.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from diffio_progress.core.delivery_marks import Attempt
from diffio_progress.core.endpoints import Endpoint, EndpointRefused, is_enabled, read_endpoint
from diffio_progress.core.errors import WebhookNotConfigured
from diffio_progress.core.webhook_records import webhook_view
from diffio_progress.core.webhook_requests import ConfigureRequest

from ..events.direct_sink import body_bytes, signed_headers
from ..events.pinned_post import DeliveryError, DeliveryRefused, PinnedPoster
from .endpoint_store import EndpointStore


class WebhookSink(Protocol):
    def configure(
        self, request: ConfigureRequest, api_key_id: str, by_key_id: str | None, now: datetime
    ) -> dict[str, Any]:
        """The ``webhook`` object of the answer, once the endpoint is stored."""
        ...

    def send_test(
        self, event_type: str, mode: str, api_key_id: str, payload: dict[str, Any], now: datetime
    ) -> dict[str, Any]:
        """Send ``payload`` to the (api_key_id, mode) endpoint: the answer's extra fields.

        Raises 404 ``webhook_not_configured`` when no endpoint takes ``event_type``.
        """
        ...


TestRecorder = Callable[[dict[str, Any], str, str, Attempt, datetime], None]


def not_configured() -> WebhookNotConfigured:
    return WebhookNotConfigured()


def new_message_id() -> str:
    return "msg_" + secrets.token_hex(12)


class DirectWebhooks:
    """Endpoints in the ``webhooks`` database; test events POSTed by this project."""

    def __init__(
        self, endpoints: EndpointStore, poster: PinnedPoster, make_secret: Callable[[], str]
    ) -> None:
        self.endpoints = endpoints
        self.poster = poster
        self._make_secret = make_secret
        # Records each test event and its attempt in the delivery log (wiring sets it).
        self.recorder: TestRecorder | None = None

    def configure(
        self, request: ConfigureRequest, api_key_id: str, by_key_id: str | None, now: datetime
    ) -> dict[str, Any]:
        done = self.endpoints.configure(request, api_key_id, by_key_id, now, self._make_secret)
        return webhook_view(done.endpoint_id, done.document, done.new_secret)

    def send_test(
        self, event_type: str, mode: str, api_key_id: str, payload: dict[str, Any], now: datetime
    ) -> dict[str, Any]:
        found = self.endpoints.find(api_key_id, mode)
        if found is None or not is_enabled(found[1]):
            raise not_configured()
        endpoint = self.endpoint(*found, event_type, now)
        attempt = self.send_now(endpoint, payload, now)
        if self.recorder is not None:
            self.recorder(payload, mode, endpoint.endpoint_id, attempt, now)
        return {"svixMessageId": new_message_id(), "delivery": delivery_answer(attempt)}

    def endpoint(
        self, endpoint_id: str, document: dict[str, Any], event_type: str, now: datetime
    ) -> Endpoint:
        """The stored endpoint as one to send ``event_type`` to; 404 when it cannot take it."""
        try:
            # The URL's rules apply when it is sent to (the poster's), not when it is read.
            endpoint = read_endpoint(endpoint_id, document, allow_private=True, now=now)
        except EndpointRefused:
            raise not_configured() from None
        if not endpoint.wants(event_type):
            raise not_configured()
        return endpoint

    def send_now(self, endpoint: Endpoint, payload: dict[str, Any], now: datetime) -> Attempt:
        """One signed POST of ``payload`` while the caller waits: the one synchronous send of
        the webhooks API (``send_test_event`` and ``resend``), under the delivery's SSRF rules
        and deadline."""
        body = body_bytes(payload)
        headers = signed_headers(endpoint.secrets, payload["eventId"], body, now)
        started = time.monotonic()
        try:
            status = self.poster.post(endpoint.url, body, headers)
        except DeliveryRefused as refused:
            return Attempt("failed", None, str(refused), _since(started), None, "endpoint")
        except DeliveryError as failed:
            return Attempt("failed", failed.status, str(failed), _since(started), None, "endpoint")
        return Attempt("delivered", status, None, _since(started))


def delivery_answer(attempt: Attempt) -> dict[str, Any]:
    """The ``delivery`` object of a synchronous send's answer."""
    return {"status": attempt.status, "httpStatus": attempt.http_status, "error": attempt.error}


def _since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
