"""Sending one logged event again now: a generation event on the relay's code, a test event here.

delivery-contract.md §5. A generation event is resent as the event function
sends: leased by its ``Outbox``, sent by its ``DirectSink`` session (through
under the caller's ``SyncCalls`` deadline (webhooks-api.md §6)), marked with
its attempt by its ``Marker``, its endpoint's health kept. Test events, which
the relay never sends, are leased and recorded in ``webhookTests`` and sent by
``DirectWebhooks.send_checked``, the send ``send_test_event`` uses; a test event's
first record is made here too.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from google.cloud.firestore_v1.field_path import FieldPath

from diffio_progress.core.deliveries import SKIPPED, Delivery, delivery_summary, read_deliveries
from diffio_progress.core.delivery_marks import TEST_TRIGGER, attempt_document, resent, sent_once
from diffio_progress.core.errors import DeliveryInProgress, EventNotFound, StoreUnavailable
from diffio_progress.core.events import RANKS
from diffio_progress.core.log_cursor import TESTS

from ..events.delivery import LEASE_MARGIN_SECONDS
from ..events.direct_sink import DirectSink
from ..events.marks import Attempted, Marker, log_attempt, new_attempt_id, outcome_of
from ..events.outbox import Outbox
from ..events.outbox_event import read_event
from ..events.sinks import SendResult
from .log_store import Found
from .log_writes import DeliveryLogWrites
from .sinks import DirectWebhooks

log = logging.getLogger(__name__)


class Resends:
    """One attempt of one event now, recorded; safe to share across threads."""

    def __init__(
        self,
        writes: DeliveryLogWrites,
        webhooks: DirectWebhooks,
        sender: tuple[Outbox, DirectSink, Marker],
        log_days: float,
        attempt_ids: Callable[[], str] = new_attempt_id,
    ) -> None:
        self.writes = writes
        self.webhooks = webhooks
        self.outbox_, self.sink, self.marker = sender
        self.log_days = log_days
        self._attempt_ids = attempt_ids

    def outbox(
        self,
        found: Found,
        endpoint_id: str,
        document: dict[str, Any],
        api_key_id: str,
        now: datetime,
        deadline: float | None = None,
    ) -> SendResult:
        """One attempt of a generation event under the event function's lease, marked by its
        ``Marker``: a delivered one makes the delivery delivered, a failed one changes no
        schedule."""
        _, project_id, _, generation_id, _, event_type = found.path
        self.webhooks.takes(document, event_type)
        event = read_event(project_id, generation_id, event_type, found.document, found.update_time)
        if event is None:
            raise EventNotFound()  # malformed: nothing that could be sent again
        lease = self.sink.deadline_seconds + LEASE_MARGIN_SECONDS
        claimed = self.outbox_.claim(event, "resend-" + secrets.token_hex(8), lease)
        if claimed is None:
            raise DeliveryInProgress()
        try:
            session = self.sink.session(api_key_id, deadline)
            [result] = session.send(claimed, [endpoint_id])
        except Exception:
            self.outbox_.release(claimed)
            raise
        before = claimed.deliveries.get(endpoint_id) or Delivery(SKIPPED)
        after = resent(before, result.ok, result.http_status, now)
        deliveries = {**claimed.deliveries, endpoint_id: after}
        self.marker.mark(claimed, deliveries, [Attempted(result, before, after, "resend", now)])
        changes = session.health_change(result, now)
        if changes:
            self.marker.health(endpoint_id, changes)
        return result

    def test_event(
        self,
        found: Found,
        endpoint_id: str,
        document: dict[str, Any],
        trigger: str,
        now: datetime,
        deadline: float | None = None,
    ) -> SendResult:
        """One attempt of a test event, under its lease, recorded as ``trigger``; its send ends
        by ``deadline`` (a ``time.monotonic()`` value)."""
        event = found.document
        payload = event.get("payload")
        if not isinstance(payload, dict):
            raise EventNotFound()
        self.webhooks.takes(document, str(event.get("eventType")))
        attempt_id = self._attempt_ids()
        lease = self.webhooks.poster.deadline_seconds + LEASE_MARGIN_SECONDS
        leased = self.writes.claim(found.path, attempt_id, lease, now)
        api_key_id = str(event.get("apiKeyId"))
        try:
            result = self.webhooks.send_checked(endpoint_id, document, payload, now, deadline)
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
            attempt_id, event, endpoint_id, trigger, outcome_of(result), now, self.log_days
        )
        self.writes.finish(found.path, fields, record)
        log_attempt(event.get("eventId"), event.get("eventType"), result, after.status, trigger)
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
            outcome_of(result),
            now,
            self.log_days,
        )
        try:
            self.writes.record((TESTS, api_key_id, "events", event_id), event, record)
        except StoreUnavailable:
            log.warning("test event %s sent but not recorded in the delivery log", event_id)
        log_attempt(
            event.get("eventId"), event.get("eventType"), result, delivery.status, TEST_TRIGGER
        )
