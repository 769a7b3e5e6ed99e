"""The two webhooks functions' shells: validate, authorize, decide the URL, hand to the sink.

Both run inside the shared HTTP shell (``http_shell.serve``), so method, body
limit, JSON, CORS, admission, outage and error answers are the progress
function's. Order (webhooks-api.md §2): the body's fields (400), the key
(401/403), admission (429), the target key (404); then a slot of the target
key's synchronous calls (429, ``sync_calls``), under whose deadline configure
decides the URL's addresses (400) and the test event is sent; a sink that is
``off`` answers 503.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from diffio_progress.core.errors import StoreUnavailable, WebhooksDisabled
from diffio_progress.core.request import parse_json_object
from diffio_progress.core.webhook_records import test_payload
from diffio_progress.core.webhook_requests import (
    TestEventRequest,
    invalid_url,
    parse_configure,
    parse_test_event,
)

from ..clock import utcnow
from ..config import Settings
from ..events.outbox_event import new_event_id
from ..events.pinned_post import DeliveryError, DeliveryRefused, LookupBusy, PinnedPoster
from ..http_shell import Call
from .keys import KeyStore
from .shell import WebhooksShell
from .sinks import WebhookSink

# One answer whether the host does not resolve, resolves to a non-public address, or takes
# too long: which one it was would tell a caller about names inside our network.
NOT_PUBLIC = "url host must resolve to public addresses only"


class _WebhooksHandler(WebhooksShell):
    """What both functions share beyond the shell: the sink, and the poster configure checks."""

    def __init__(
        self,
        settings: Settings,
        keys: KeyStore,
        sink: WebhookSink | None,
        poster: PinnedPoster,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(settings, keys, clock, monotonic)
        self.sink = sink
        self.poster = poster

    def close(self) -> None:
        """Release the sink's pooled connections (a deployed instance keeps them for its life)."""
        close = getattr(self.sink, "close", None)
        if close is not None:
            close()

    def _sink(self) -> WebhookSink:
        if self.sink is None:
            raise WebhooksDisabled()
        return self.sink


class ConfigureHandler(_WebhooksHandler):
    """``POST /v1/webhooks/configure``: create or update the (key, mode) endpoint."""

    def answer(self, call: Call) -> dict[str, Any]:
        allow_private = self.settings.webhook_allow_private_urls
        request = parse_configure(parse_json_object(call.raw), allow_private)
        call.exchange.log_fields["mode"] = request.mode
        authorized = self.access.authorize(call, request.api_key_id)
        with self.sync.slot(authorized.api_key_id) as deadline:
            if not allow_private:
                self._check_addresses(request.url, deadline)
            webhook = self._sink().configure(
                request, authorized.api_key_id, authorized.caller.key_id, self.clock()
            )
        call.exchange.log_fields["endpointId"] = webhook["endpointId"]
        return {"webhook": webhook}

    def _check_addresses(self, url: Any, deadline: float) -> None:
        """Resolve the host now (never connect) by ``deadline``: every address must be public."""
        try:
            self.poster.check(url, deadline)
        except LookupBusy:
            raise StoreUnavailable("too many DNS lookups in flight") from None
        except (DeliveryRefused, DeliveryError):
            raise invalid_url(NOT_PUBLIC) from None


class TestEventHandler(_WebhooksHandler):
    """``POST /v1/webhooks/send_test_event``: a signed sample event to the (key, mode) endpoint."""

    def answer(self, call: Call) -> dict[str, Any]:
        request = parse_test_event(parse_json_object(call.raw))
        call.exchange.log_fields.update(mode=request.mode, eventType=request.event_type)
        authorized = self.access.authorize(call, request.api_key_id)
        sink = self._sink()
        with self.sync.slot(authorized.api_key_id) as deadline:
            return self._send(call, request, authorized.api_key_id, sink, deadline)

    def _send(
        self,
        call: Call,
        request: TestEventRequest,
        api_key_id: str,
        sink: WebhookSink,
        deadline: float,
    ) -> dict[str, Any]:
        now = self.clock()
        event_id = new_event_id()
        payload = test_payload(
            request.event_type,
            api_key_id,
            event_id,
            now,
            secrets.token_hex(6),
            request.sample,
        )
        sent = sink.send_test(request.event_type, request.mode, api_key_id, payload, now, deadline)
        call.exchange.log_fields["eventId"] = event_id
        if "delivery" in sent:
            call.exchange.log_fields["delivery"] = sent["delivery"]["status"]
        return {
            "svixMessageId": sent["svixMessageId"],
            "eventId": event_id,
            "eventType": request.event_type,
            "mode": request.mode,
            "apiKeyId": api_key_id,
            **{k: v for k, v in sent.items() if k != "svixMessageId"},
        }
