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

from diffio_progress.core.endpoints import (
    Endpoint,
    EndpointRefused,
    is_enabled,
    read_endpoint,
    wants,
)
from diffio_progress.core.errors import SecretUnavailable, WebhookNotConfigured
from diffio_progress.core.ssrf import UrlRefused, parse_webhook_url
from diffio_progress.core.webhook_records import webhook_view
from diffio_progress.core.webhook_requests import ConfigureRequest

from ..events.direct_sink import body_bytes, signed_headers
from ..events.pinned_post import DeliveryRefused, PinnedPoster
from ..events.sinks import ENDPOINT, OURS, SendResult, posted
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
        """Send ``payload`` to the (api_key_id, mode) endpoint by ``deadline`` (a
        ``time.monotonic()`` value): the answer's extra fields.

        Raises 404 ``webhook_not_configured`` when no endpoint takes ``event_type``.
        """
        ...


TestRecorder = Callable[[dict[str, Any], str, str, SendResult, datetime], None]


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
        result = self.send_checked(endpoint_id, document, payload, now, deadline)
        if self.recorder is not None:
            self.recorder(payload, mode, endpoint_id, result, now)
        return {"svixMessageId": new_message_id(), "delivery": delivery_answer(result)}

    def send_checked(
        self,
        endpoint_id: str,
        document: dict[str, Any],
        payload: dict[str, Any],
        now: datetime,
        deadline: float | None,
    ) -> SendResult:
        """A synchronous send (``send_test_event``, ``resend`` of a test event) of ``payload``
        to the stored endpoint, under the delivery's rules; 404 when it cannot take the type.

        A secret that does not open is a failed attempt of ours (one error line), and a URL
        the delivery's rules refuse (an ``http://`` endpoint left from before) a failed one
        with nothing sent: never a 5xx, never a signed clear-text send.
        """
        event_type = str(payload.get("eventType"))
        self.takes(document, event_type)
        try:
            plain = opened(self.endpoints.box, endpoint_id, document)
        except SecretUnavailable as unavailable:
            log.error(
                "webhook endpoint %s: signing secret unavailable: %s",
                endpoint_id,
                unavailable,
                extra={"fields": {"endpointId": endpoint_id, "failureKind": OURS}},
            )
            error = "the signing secret cannot be decrypted"
            return SendResult(endpoint_id, error=error, failure_kind=OURS)
        endpoint = self.endpoint(endpoint_id, plain, event_type, now)
        try:
            parse_webhook_url(endpoint.url.text, self.poster.allow_private)
        except UrlRefused as refused:
            return SendResult(endpoint_id, error=str(refused), failure_kind=ENDPOINT)
        return self.send_now(endpoint, payload, now, deadline)

    @staticmethod
    def takes(document: dict[str, Any], event_type: str) -> None:
        """404 unless the stored endpoint takes ``event_type`` (its secret may be sealed)."""
        if not wants(document, event_type):
            raise not_configured()

    def endpoint(
        self, endpoint_id: str, document: dict[str, Any], event_type: str, now: datetime
    ) -> Endpoint:
        """The stored endpoint, its secret opened, as one to send ``event_type`` to; 404 when
        it cannot take it."""
        try:
            # The URL's rules apply when it is sent to (the poster's), not when it is read.
            endpoint = read_endpoint(endpoint_id, document, allow_private=True, now=now)
        except EndpointRefused:
            raise not_configured() from None
        if not endpoint.wants(event_type):
            raise not_configured()
        return endpoint

    def send_now(
        self,
        endpoint: Endpoint,
        payload: dict[str, Any],
        now: datetime,
        deadline: float | None = None,
    ) -> SendResult:
        """One signed POST of ``payload`` to ``endpoint``, under the delivery's SSRF rules and
        deadline; its outcome as the event function's sender reports one."""
        body = body_bytes(payload)
        headers = signed_headers(endpoint.secrets, payload["eventId"], body, now)
        endpoint_id = endpoint.endpoint_id
        try:
            return posted(self.poster, endpoint_id, endpoint.url, body, headers, deadline)
        except DeliveryRefused as refused:
            return SendResult(endpoint_id, error=str(refused), failure_kind=ENDPOINT)


def delivery_answer(result: SendResult) -> dict[str, Any]:
    """The ``delivery`` object of a synchronous send's answer."""
    status = "delivered" if result.ok else "failed"
    return {"status": status, "httpStatus": result.http_status, "error": result.error}
