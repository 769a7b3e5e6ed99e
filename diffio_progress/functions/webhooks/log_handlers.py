"""The four delivery-log functions' shells: validate, authorize as configure, answer from the log.

delivery-contract.md §4-5. Each runs inside the shared HTTP shell, so method,
body limit, JSON, CORS, admission and outage answers are the progress
function's. Order: the body's fields (400), the key (401/403), admission
(429), the target key (404), then the cursor's binding (400) and the log's own
404/409s. A sink that is ``off`` answers 503 ``webhooks_disabled``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from diffio_progress.core.errors import WebhooksDisabled
from diffio_progress.core.log_requests import (
    EventRequest,
    ListEventsRequest,
    RecoverRequest,
    parse_event_request,
    parse_list_events,
    parse_recover,
)
from diffio_progress.core.request import parse_json_object

from ..clock import utcnow
from ..config import Settings
from ..http_shell import Call
from .keys import KeyStore
from .shell import WebhooksShell


class DeliveryLog(Protocol):
    """Where the four calls are answered from: the ``webhooks`` database, or Svix."""

    def list_events(
        self, request: ListEventsRequest, api_key_id: str, now: datetime
    ) -> dict[str, Any]: ...

    def list_attempts(
        self, request: EventRequest, api_key_id: str, now: datetime
    ) -> dict[str, Any]: ...

    def recover(
        self, request: RecoverRequest, api_key_id: str, now: datetime
    ) -> dict[str, Any]: ...

    def resend(
        self, request: EventRequest, api_key_id: str, now: datetime, deadline: float | None = None
    ) -> dict[str, Any]: ...

    def close(self) -> None: ...


class LogHandler(WebhooksShell):
    """What the four functions share beyond the shell: the log they answer from."""

    def __init__(
        self,
        settings: Settings,
        keys: KeyStore,
        log: DeliveryLog | None,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(settings, keys, clock, monotonic)
        self.log = log

    def close(self) -> None:
        if self.log is not None:
            self.log.close()

    def _log(self) -> DeliveryLog:
        if self.log is None:
            raise WebhooksDisabled()
        return self.log

    def _authorized(self, call: Call, mode: str, requested: str | None) -> str:
        call.exchange.log_fields["mode"] = mode
        return self.access.authorize(call, requested).api_key_id


class ListEventsHandler(LogHandler):
    """``POST /v1/webhooks/list_events``: the key's events of the window, newest first."""

    def answer(self, call: Call) -> dict[str, Any]:
        request = parse_list_events(parse_json_object(call.raw))
        api_key_id = self._authorized(call, request.filters.mode, request.api_key_id)
        answer = self._log().list_events(request, api_key_id, self.clock())
        call.exchange.log_fields["events"] = len(answer["events"])
        return answer


class ListAttemptsHandler(LogHandler):
    """``POST /v1/webhooks/list_attempts``: one event's attempts, oldest first."""

    def answer(self, call: Call) -> dict[str, Any]:
        request = parse_event_request(parse_json_object(call.raw))
        api_key_id = self._authorized(call, request.mode, request.api_key_id)
        call.exchange.log_fields["eventId"] = request.event_id
        return self._log().list_attempts(request, api_key_id, self.clock())


class RecoverHandler(LogHandler):
    """``POST /v1/webhooks/recover``: failed and skipped deliveries of a window pending again."""

    def answer(self, call: Call) -> dict[str, Any]:
        now = self.clock()
        request = parse_recover(parse_json_object(call.raw), now, self.settings.webhook_log_days)
        api_key_id = self._authorized(call, request.mode, request.api_key_id)
        answer = self._log().recover(request, api_key_id, now)
        call.exchange.log_fields["recovered"] = answer["recovered"]
        return answer


class ResendHandler(LogHandler):
    """``POST /v1/webhooks/resend``: one attempt of one event now, synchronously."""

    def answer(self, call: Call) -> dict[str, Any]:
        request = parse_event_request(parse_json_object(call.raw))
        api_key_id = self._authorized(call, request.mode, request.api_key_id)
        call.exchange.log_fields["eventId"] = request.event_id
        log = self._log()
        # webhooks-api.md §6: a slot of the key's before any endpoint read or send.
        with self.sync.slot(api_key_id) as deadline:
            answer = log.resend(request, api_key_id, self.clock(), deadline)
        if "delivery" in answer:
            call.exchange.log_fields["delivery"] = answer["delivery"]["status"]
        return answer
