"""The delivery log of the ``direct`` sink: list, recover and resend over the ``webhooks`` database.

delivery-contract.md §4-5 on docs/delivery-storage.md's documents. A
generation event is resent as the event function sends: leased by its
``Outbox``, sent by its ``DirectSink`` session, marked with its attempt by its
``Marker`` (trigger ``resend``), its endpoint's health kept. Recovered
generation events are left to the relay. Test events, which the relay never
sends, are sent by this call through ``DirectWebhooks.send_now``, the one
synchronous send ``send_test_event`` uses too.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from google.cloud.firestore_v1.field_path import FieldPath

from diffio_progress.core.deliveries import (
    RECOVER_TRIGGER,
    SKIPPED,
    Delivery,
    delivery_summary,
    pair_endpoint_id,
    read_deliveries,
)
from diffio_progress.core.delivery_marks import (
    RESEND_TRIGGER,
    TEST_TRIGGER,
    attempt_document,
    resent,
    sent_once,
)
from diffio_progress.core.endpoints import is_enabled
from diffio_progress.core.errors import (
    DeliveryInProgress,
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
from ..events.direct_sink import DirectSink
from ..events.marks import Attempted, Marker
from ..events.outbox import Outbox, read_event
from ..events.sinks import SendResult
from .log_store import DeliveryLogStore, Found, micros
from .log_writes import DeliveryLogWrites, log_attempt
from .sinks import DirectWebhooks, delivery_answer, new_message_id

log = logging.getLogger(__name__)

# Test events one recover call sends itself (generation events are the relay's).
MAX_TEST_RECOVERIES = 50


def new_attempt_id() -> str:
    return "att_" + secrets.token_hex(16)


class DirectLog:
    """The four calls on the ``webhooks`` database; safe to share across threads."""

    def __init__(
        self,
        store: DeliveryLogStore,
        webhooks: DirectWebhooks,
        sender: tuple[Outbox, DirectSink, Marker],
        log_days: float,
        attempt_ids: Callable[[], str] = new_attempt_id,
    ) -> None:
        self.store = store
        self.writes = DeliveryLogWrites(store)
        self.webhooks = webhooks
        self.outbox, self.sink, self.marker = sender
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
        marked, tests = self.writes.recover(
            api_key_id, request.mode, window, endpoint_id, takes, now
        )
        for path, event in tests[:MAX_TEST_RECOVERIES]:
            found = Found(path, event, None)
            try:
                self._resend_test(found, endpoint_id, document, RECOVER_TRIGGER, now)
            except DeliveryInProgress:
                continue  # being resent right now
        return {"recovered": marked + min(len(tests), MAX_TEST_RECOVERIES)}

    def resend(self, request: EventRequest, api_key_id: str, now: datetime) -> dict[str, Any]:
        found = self._event(request, api_key_id, now)
        endpoint_id, document = self._enabled_endpoint(api_key_id, request.mode)
        if found.path[0] == TESTS:
            result = self._resend_test(found, endpoint_id, document, RESEND_TRIGGER, now)
        else:
            result = self._resend_outbox(found, endpoint_id, document, api_key_id, now)
        return {
            "eventId": request.event_id,
            "eventType": found.document.get("eventType"),
            "mode": request.mode,
            "apiKeyId": api_key_id,
            "svixMessageId": new_message_id(),
            "delivery": delivery_answer(result),
        }

    def _resend_outbox(
        self,
        found: Found,
        endpoint_id: str,
        document: dict[str, Any],
        api_key_id: str,
        now: datetime,
    ) -> SendResult:
        """One attempt of a generation event under the event function's lease, marked by its
        ``Marker``: a delivered one makes the delivery delivered, a failed one changes no
        schedule."""
        _, project_id, _, generation_id, _, event_type = found.path
        self.webhooks.endpoint(endpoint_id, document, event_type, now)  # 404 unless it takes it
        event = read_event(project_id, generation_id, event_type, found.document, found.update_time)
        if event is None:
            raise EventNotFound()  # malformed: nothing that could be sent again
        lease = self.sink.deadline_seconds + LEASE_MARGIN_SECONDS
        claimed = self.outbox.claim(event, "resend-" + secrets.token_hex(8), lease)
        if claimed is None:
            raise DeliveryInProgress()
        try:
            session = self.sink.session(api_key_id)
            [result] = self.webhooks.synchronous(
                api_key_id, lambda: session.send(claimed, [endpoint_id])
            )
        except Exception:
            self.outbox.release(claimed)
            raise
        before = claimed.deliveries.get(endpoint_id) or Delivery(SKIPPED)
        after = resent(before, result.ok, result.http_status, now)
        deliveries = {**claimed.deliveries, endpoint_id: after}
        self.marker.mark(claimed, deliveries, [Attempted(result, before, after, "resend", now)])
        changes = session.health_change(result, now)
        if changes:
            self.marker.health(endpoint_id, changes)
        return result

    def _resend_test(
        self,
        found: Found,
        endpoint_id: str,
        document: dict[str, Any],
        trigger: str,
        now: datetime,
    ) -> SendResult:
        """One attempt of a test event, under its lease, recorded as ``trigger``."""
        event = found.document
        payload = event.get("payload")
        if not isinstance(payload, dict):
            raise EventNotFound()
        endpoint = self.webhooks.endpoint(endpoint_id, document, str(event.get("eventType")), now)
        attempt_id = self._attempt_ids()
        lease = self.webhooks.poster.deadline_seconds + LEASE_MARGIN_SECONDS
        leased = self.writes.claim(found.path, attempt_id, lease, now)
        api_key_id = str(event.get("apiKeyId"))
        try:
            result = self.webhooks.synchronous(
                api_key_id, lambda: self.webhooks.send_now(endpoint, payload, now)
            )
        except Exception:
            self.writes.release(found.path)
            raise
        deliveries = read_deliveries(leased.get("deliveries"))
        after = resent(deliveries.get(endpoint_id), result.ok, result.http_status, now)
        deliveries[endpoint_id] = after
        shown_id, status = delivery_summary(deliveries, api_key_id, str(event.get("mode")))
        fields: dict[str, Any] = {
            FieldPath("deliveries", endpoint_id).to_api_repr(): after.to_map(),
            "deliveryEndpointId": shown_id,
            "deliveryStatus": status,
        }
        record = attempt_document(
            attempt_id, event, endpoint_id, trigger, _outcome(result), now, self.log_days
        )
        self.writes.finish(found.path, fields, record)
        log_attempt(event, result, after.status, trigger)
        return result

    def record_test(
        self,
        payload: dict[str, Any],
        mode: str,
        endpoint_id: str,
        result: SendResult,
        now: datetime,
    ) -> None:
        """A test event and its attempt (``trigger: "test"``), listed in the mode it was sent in.

        A failure to record is logged, not answered: the event was sent, and the
        answer tells the client how that went.
        """
        event_id, api_key_id = payload["eventId"], payload["apiKeyId"]
        delivery = sent_once(result.ok, result.http_status, now)
        event = {
            "eventId": event_id,
            "eventType": payload["eventType"],
            "payload": payload,
            "createdAt": now,
            "deliveredAt": now if result.ok else None,
            "deliveredTo": [endpoint_id] if result.ok else [],
            "attempts": 1,
            "apiKeyId": api_key_id,
            "mode": mode,
            "test": True,
            "rank": RANKS[payload["eventType"]],
            "expiresAt": now + timedelta(days=self.log_days),
            "deliveries": {endpoint_id: delivery.to_map()},
            "deliveryEndpointId": endpoint_id,
            "deliveryStatus": delivery.status,
        }
        record = attempt_document(
            self._attempt_ids(),
            event,
            endpoint_id,
            TEST_TRIGGER,
            _outcome(result),
            now,
            self.log_days,
        )
        try:
            self.writes.record((TESTS, api_key_id, "events", event_id), event, record)
        except StoreUnavailable:
            log.warning("test event %s sent but not recorded in the delivery log", event_id)
        log_attempt(event, result, delivery.status, TEST_TRIGGER)

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


def _outcome(result: SendResult) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "httpStatus": result.http_status,
        "error": result.error,
        "durationMs": result.duration_ms,
        "response": result.response,
        "failureKind": result.failure_kind,
    }
