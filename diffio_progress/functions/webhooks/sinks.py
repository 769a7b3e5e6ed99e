"""Where the webhooks API puts endpoints and sends test events: the ``direct`` sink.

``svix_sinks.py`` is the other one. Both answer the same two calls, so the
handlers never ask which sink they have. The direct sink stores endpoints in the
``webhooks`` database and sends a test event itself, synchronously, under the
delivery's SSRF rules and deadline, reporting how the receiver answered.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from diffio_progress.core.endpoints import EndpointRefused, is_enabled, read_endpoint, wants
from diffio_progress.core.errors import SecretUnavailable, WebhookNotConfigured
from diffio_progress.core.ssrf import UrlRefused, parse_webhook_url
from diffio_progress.core.webhook_records import webhook_view
from diffio_progress.core.webhook_requests import ConfigureRequest

from ..events.direct_sink import body_bytes, signed_headers
from ..events.pinned_post import DeliveryError, DeliveryRefused, PinnedPoster
from ..secret_box import opened
from .endpoint_store import EndpointStore

log = logging.getLogger(__name__)


class WebhookSink(Protocol):
    def configure(
        self, request: ConfigureRequest, api_key_id: str, by_key_id: str | None, now: datetime
    ) -> dict[str, Any]:
        """The ``webhook`` object of the answer, once the endpoint is stored."""
        ...

    def send_test(
        self,
        event_type: str,
        mode: str,
        api_key_id: str,
        payload: dict[str, Any],
        now: datetime,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """Send ``payload`` to the (api_key_id, mode) endpoint: the answer's extra fields.

        ``deadline`` (``time.monotonic()``) bounds the send. Raises 404
        ``webhook_not_configured`` when no endpoint takes ``event_type``.
        """
        ...


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

    def configure(
        self, request: ConfigureRequest, api_key_id: str, by_key_id: str | None, now: datetime
    ) -> dict[str, Any]:
        done = self.endpoints.configure(request, api_key_id, by_key_id, now, self._make_secret)
        return webhook_view(done.endpoint_id, done.document, done.new_secret)

    def send_test(
        self,
        event_type: str,
        mode: str,
        api_key_id: str,
        payload: dict[str, Any],
        now: datetime,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        found = self.endpoints.find(api_key_id, mode)
        if found is None or not is_enabled(found[1]):
            raise not_configured()
        endpoint_id, document = found
        if not wants(document, event_type):
            raise not_configured()
        delivery: dict[str, Any] = {"status": "delivered", "httpStatus": None, "error": None}
        try:
            document = opened(self.endpoints.box, endpoint_id, document)
        except SecretUnavailable as unavailable:
            # Ours, not the receiver's: a failed send, one error line, never a 5xx.
            log.error(
                "webhook endpoint %s: signing secret unavailable: %s",
                endpoint_id,
                unavailable,
                extra={"fields": {"endpointId": endpoint_id, "failureKind": "ours"}},
            )
            delivery.update(status="failed", error="the signing secret cannot be decrypted")
            return {"svixMessageId": new_message_id(), "delivery": delivery}
        try:
            # The URL's form is judged below, by the delivery's rules.
            endpoint = read_endpoint(endpoint_id, document, allow_private=True, now=now)
        except EndpointRefused:
            raise not_configured() from None
        try:
            # Delivery's rules, not configure's of long ago: no signed clear-text send to an
            # http:// endpoint left from before https was required.
            url = parse_webhook_url(endpoint.url.text, self.poster.allow_private)
        except UrlRefused as refused:
            delivery.update(status="failed", error=str(refused))
            return {"svixMessageId": new_message_id(), "delivery": delivery}
        body = body_bytes(payload)
        headers = signed_headers(endpoint.secrets, payload["eventId"], body, now)
        try:
            delivery["httpStatus"] = self.poster.post(url, body, headers, deadline)
        except DeliveryRefused as refused:
            delivery.update(status="failed", error=str(refused))
        except DeliveryError as failed:
            delivery.update(status="failed", httpStatus=failed.status, error=str(failed))
        return {"svixMessageId": new_message_id(), "delivery": delivery}
