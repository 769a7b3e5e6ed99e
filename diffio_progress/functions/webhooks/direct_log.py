"""The delivery log of the ``direct`` sink: list, recover and resend over the ``webhooks`` database.

delivery-contract.md §4-5 on docs/delivery-storage.md's documents. ``resend``
sends through ``DirectWebhooks.send_now``, the one synchronous send that
``send_test_event`` uses too, under the event's lease.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from diffio_progress.core.delivery_marks import (
    Attempt,
    attempt_document,
    resend_fields,
    sent_delivery,
)
from diffio_progress.core.endpoints import is_enabled
from diffio_progress.core.errors import (
    EventNotFound,
    InvalidCursor,
    StoreUnavailable,
    WebhookDisabled,
    WebhookNotConfigured,
)
from diffio_progress.core.events import RANKS
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

from ..events.delivery import LEASE_MARGIN_SECONDS
from .endpoint_store import pair_endpoint_id
from .log_store import DeliveryLogStore, micros
from .log_writes import DeliveryLogWrites, log_attempt
from .sinks import DirectWebhooks, delivery_answer, new_message_id

log = logging.getLogger(__name__)


def new_attempt_id() -> str:
    return "att_" + secrets.token_hex(16)


class DirectLog:
    """The four calls on the ``webhooks`` database; safe to share across threads."""

    def __init__(
        self,
        store: DeliveryLogStore,
        webhooks: DirectWebhooks,
        log_days: float,
        attempt_ids: Callable[[], str] = new_attempt_id,
    ) -> None:
        self.store = store
        self.writes = DeliveryLogWrites(store)
        self.webhooks = webhooks
        self.log_days = log_days
        self._attempt_ids = attempt_ids

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
        recovered = self.writes.recover(api_key_id, request.mode, window, endpoint_id, takes, now)
        return {"recovered": recovered}

    def resend(self, request: EventRequest, api_key_id: str, now: datetime) -> dict[str, Any]:
        path, event = self._event(request, api_key_id, now)
        endpoint_id, document = self._enabled_endpoint(api_key_id, request.mode)
        payload = event.get("payload")
        if not isinstance(payload, dict):
            raise EventNotFound()  # nothing that could be sent again
        endpoint = self.webhooks.endpoint(endpoint_id, document, str(event.get("eventType")), now)
        attempt_id = self._attempt_ids()
        lease = self.webhooks.poster.deadline_seconds + LEASE_MARGIN_SECONDS
        leased = self.writes.claim(path, attempt_id, lease, now)
        try:
            attempt = self.webhooks.send_now(endpoint, payload, now)
        except Exception:
            self.writes.release(path)
            raise
        fields = resend_fields(leased, endpoint_id, attempt, now)
        record = attempt_document(
            attempt_id, leased, endpoint_id, "resend", attempt, now, self.log_days
        )
        self.writes.finish(path, fields, record)
        log_attempt(request.event_id, endpoint_id, "resend", attempt)
        return {
            "eventId": request.event_id,
            "eventType": event.get("eventType"),
            "mode": request.mode,
            "apiKeyId": api_key_id,
            "svixMessageId": new_message_id(),
            "delivery": delivery_answer(attempt),
        }

    def record_test(
        self, payload: dict[str, Any], mode: str, endpoint_id: str, attempt: Attempt, now: datetime
    ) -> None:
        """A test event and its attempt (``trigger: "test"``), listed in the mode it was sent in.

        A failure to record is logged, not answered: the event was sent, and the
        answer tells the client how that went.
        """
        event_id, api_key_id = payload["eventId"], payload["apiKeyId"]
        delivery = sent_delivery(attempt, "test", now)
        event = {
            "eventId": event_id,
            "eventType": payload["eventType"],
            "payload": payload,
            "createdAt": now,
            "deliveredAt": now if attempt.delivered else None,
            "deliveredTo": [endpoint_id] if attempt.delivered else [],
            "attempts": 1,
            "apiKeyId": api_key_id,
            "mode": mode,
            "test": True,
            "rank": RANKS[payload["eventType"]],
            "expiresAt": now + timedelta(days=self.log_days),
            "deliveries": {endpoint_id: delivery},
            "deliveryEndpointId": endpoint_id,
            "deliveryStatus": delivery["status"],
        }
        record = attempt_document(
            self._attempt_ids(), event, endpoint_id, "test", attempt, now, self.log_days
        )
        try:
            self.writes.record((TESTS, api_key_id, "events", event_id), event, record)
        except StoreUnavailable:
            log.warning("test event %s sent but not recorded in the delivery log", event_id)
        log_attempt(event_id, endpoint_id, "test", attempt)

    def _event(
        self, request: EventRequest, api_key_id: str, now: datetime
    ) -> tuple[tuple[str, ...], dict[str, Any]]:
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
