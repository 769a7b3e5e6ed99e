"""The delivery log of the ``direct`` sink: list, recover and resend over the ``webhooks`` database.

delivery-contract.md §4-5 on docs/delivery-storage.md's documents. Recovered
generation events are left to the relay; test events, which the relay never
sends, are sent by the recover call itself. Sending is ``resends.Resends``'.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from diffio_progress.core.deliveries import RECOVER_TRIGGER, pair_endpoint_id
from diffio_progress.core.delivery_marks import RESEND_TRIGGER
from diffio_progress.core.endpoints import is_enabled
from diffio_progress.core.errors import (
    DeliveryInProgress,
    EventNotFound,
    InvalidCursor,
    WebhookDisabled,
    WebhookNotConfigured,
)
from diffio_progress.core.log_cursor import (
    TESTS,
    Cursor,
    binding_digest,
    check_binding,
    make_cursor,
)
from diffio_progress.core.log_requests import (
    EventRequest,
    ListEventsRequest,
    RecoverRequest,
    window_start,
)
from diffio_progress.core.log_views import attempt_view, endpoint_view, event_view

from ..events.direct_sink import DirectSink
from ..events.marks import Marker
from ..events.outbox import Outbox
from .log_store import DeliveryLogStore, Found, micros
from .log_writes import DeliveryLogWrites
from .resends import Resends
from .sinks import DirectWebhooks, delivery_answer, new_message_id

# Test events one recover call sends itself (generation events are the relay's).
MAX_TEST_RECOVERIES = 50


class DirectLog:
    """The four calls on the ``webhooks`` database; safe to share across threads."""

    def __init__(
        self,
        store: DeliveryLogStore,
        webhooks: DirectWebhooks,
        sender: tuple[Outbox, DirectSink, Marker],
        log_days: float,
    ) -> None:
        self.store = store
        self.writes = DeliveryLogWrites(store)
        self.webhooks = webhooks
        self.resends = Resends(self.writes, webhooks, sender, log_days)
        self.record_test = self.resends.record_test
        self.log_days = log_days

    def close(self) -> None:
        pass

    def list_events(
        self, request: ListEventsRequest, api_key_id: str, now: datetime
    ) -> dict[str, Any]:
        filters = request.filters
        binding = filters.binding(api_key_id)
        cursor = request.cursor
        if cursor is not None:
            check_binding(cursor, binding)
            if cursor.path is None:
                raise InvalidCursor()  # another sink's cursor
        oldest = window_start(now, self.log_days)
        if filters.since is not None and filters.since > oldest:
            oldest = filters.since
        page = self.store.page(api_key_id, filters, oldest, cursor, request.limit)
        endpoint_id = pair_endpoint_id(api_key_id, filters.mode)
        next_cursor = None
        if page.more and page.events:
            path, last = page.events[-1]
            position = Cursor(binding_digest(binding), micros(last["createdAt"]), path)
            next_cursor = make_cursor(position)
        return {
            "events": [event_view(document) for _, document in page.events],
            "endpoint": endpoint_view(endpoint_id, self.store.endpoint(endpoint_id)),
            "nextCursor": next_cursor,
        }

    def list_attempts(
        self, request: EventRequest, api_key_id: str, now: datetime
    ) -> dict[str, Any]:
        self._event(request, api_key_id, now)
        attempts = self.store.attempts(request.event_id)
        return {"eventId": request.event_id, "attempts": [attempt_view(a) for a in attempts]}

    def recover(self, request: RecoverRequest, api_key_id: str, now: datetime) -> dict[str, Any]:
        endpoint_id, document = self._enabled_endpoint(api_key_id, request.mode)
        takes = frozenset(t for t in document.get("eventTypes") or () if isinstance(t, str))
        window = (request.since, request.until)
        marked, tests = self.writes.recover(
            api_key_id, request.mode, window, endpoint_id, takes, now
        )
        for path, event in tests[:MAX_TEST_RECOVERIES]:
            found = Found(path, event, None)
            try:
                self.resends.test_event(found, endpoint_id, document, RECOVER_TRIGGER, now)
            except DeliveryInProgress:
                continue  # being resent right now
        return {"recovered": marked + min(len(tests), MAX_TEST_RECOVERIES)}

    def resend(
        self, request: EventRequest, api_key_id: str, now: datetime, deadline: float | None = None
    ) -> dict[str, Any]:
        found = self._event(request, api_key_id, now)
        endpoint_id, document = self._enabled_endpoint(api_key_id, request.mode)
        if found.path[0] == TESTS:
            result = self.resends.test_event(
                found, endpoint_id, document, RESEND_TRIGGER, now, deadline
            )
        else:
            result = self.resends.outbox(found, endpoint_id, document, api_key_id, now, deadline)
        return {
            "eventId": request.event_id,
            "eventType": found.document.get("eventType"),
            "mode": request.mode,
            "apiKeyId": api_key_id,
            "svixMessageId": new_message_id(),
            "delivery": delivery_answer(result),
        }

    def _event(self, request: EventRequest, api_key_id: str, now: datetime) -> Found:
        oldest = window_start(now, self.log_days)
        found = self.store.find_event(request.event_id, api_key_id, request.mode, oldest)
        if found is None:
            raise EventNotFound()
        return found

    def _enabled_endpoint(self, api_key_id: str, mode: str) -> tuple[str, dict[str, Any]]:
        found = self.webhooks.endpoints.find(api_key_id, mode)
        if found is None:
            raise WebhookNotConfigured(WebhookNotConfigured.NO_ENDPOINT)
        if not is_enabled(found[1]):
            raise WebhookDisabled()
        return found
