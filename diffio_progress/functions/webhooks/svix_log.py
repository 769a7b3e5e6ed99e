"""The delivery log of the ``svix`` sink: the four calls answered from Svix with its library.

delivery-contract.md §4-5: messages and their status for the (key, mode)
endpoint (``message_attempt.list_attempted_messages``, or ``message.list``
when there is no endpoint: every event then ``skipped``), a message's attempts
(``list_by_msg``), ``endpoint.recover`` and ``message_attempt.resend``. Nothing
is stored in Firestore. The cursor wraps Svix's iterator, bound to the filters
and key as the direct sink's is. A message is found by its ``eventId`` (Svix
takes an event id wherever it takes a message id).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from diffio_progress.core.errors import (
    EventNotFound,
    InvalidCursor,
    WebhookDisabled,
    WebhookNotConfigured,
)
from diffio_progress.core.log_cursor import Cursor, binding_digest, check_binding, make_cursor
from diffio_progress.core.log_requests import (
    EventRequest,
    ListEventsRequest,
    RecoverRequest,
    window_start,
)
from diffio_progress.core.log_views import MAX_RESPONSE_CHARS, time_text

from .svix_sinks import TEST_TAG, SvixWebhooks, get_or_none, outage

# Svix's message status → the contract's delivery status.
_STATUS = {0: "delivered", 1: "pending", 2: "failed", 3: "pending", 4: "skipped"}
_SVIX_STATUS = {"delivered": 0, "pending": 1, "failed": 2}  # MessageStatus
_MANUAL = 1
# How many failed messages recover counts before it asks Svix to send them (pages of 250).
_COUNT_PAGES, _PAGE = 40, 250


class SvixLog:
    """The four calls against Svix, one environment per mode; safe to share across threads."""

    def __init__(self, webhooks: SvixWebhooks, log_days: float) -> None:
        self.webhooks = webhooks
        self.log_days = log_days

    def close(self) -> None:
        self.webhooks.close()

    def list_events(
        self, request: ListEventsRequest, api_key_id: str, now: datetime
    ) -> dict[str, Any]:
        from svix.api import MessageAttemptListAttemptedMessagesOptions, MessageListOptions

        filters = request.filters
        binding = filters.binding(api_key_id)
        iterator = None
        if request.cursor is not None:
            check_binding(request.cursor, binding)
            if request.cursor.svix_iterator is None:
                raise InvalidCursor()  # another sink's cursor
            iterator = request.cursor.svix_iterator
        after = window_start(now, self.log_days)
        if filters.since is not None and filters.since > after:
            after = filters.since
        types = [filters.event_type] if filters.event_type else None
        svix = self.webhooks.environments[filters.mode].client
        empty: dict[str, Any] = {"events": [], "endpoint": None, "nextCursor": None}
        with outage():
            app = get_or_none(lambda: svix.application.get(api_key_id))
            if app is None:
                return empty
            endpoint = get_or_none(lambda: svix.endpoint.get(app.id, filters.mode))
            shown = _endpoint_view(endpoint)
            common: dict[str, Any] = dict(
                limit=request.limit, iterator=iterator, before=filters.until, after=after
            )
            if endpoint is not None and filters.status != "skipped":
                status = _status(filters.status)
                attempted = MessageAttemptListAttemptedMessagesOptions(
                    **common, status=status, event_types=types, with_content=True
                )
                listed = svix.message_attempt.list_attempted_messages(
                    app.id, endpoint.id, attempted
                )
            elif endpoint is None and filters.status in (None, "skipped"):
                every = MessageListOptions(**common, event_types=types, with_content=True)
                listed = svix.message.list(app.id, every)
            else:
                return {**empty, "endpoint": shown}
        events = [
            _event_view(m, endpoint.id if endpoint else None)
            for m in listed.data
            if filters.generation_id in (None, (m.payload or {}).get("generationId"))
        ]
        next_cursor = None
        if not listed.done and listed.iterator:
            position = Cursor(binding_digest(binding), svix_iterator=listed.iterator)
            next_cursor = make_cursor(position)
        return {"events": events, "endpoint": shown, "nextCursor": next_cursor}

    def list_attempts(
        self, request: EventRequest, api_key_id: str, now: datetime
    ) -> dict[str, Any]:
        from svix.api import MessageAttemptListByMsgOptions

        svix = self.webhooks.environments[request.mode].client
        with outage():
            app_id, message = self._message(request, api_key_id, now)
            listed = svix.message_attempt.list_by_msg(
                app_id, message.id, MessageAttemptListByMsgOptions(limit=_PAGE)
            )
        attempts = sorted(listed.data, key=lambda a: a.timestamp)
        return {"eventId": request.event_id, "attempts": [_attempt_view(a) for a in attempts]}

    def recover(self, request: RecoverRequest, api_key_id: str, now: datetime) -> dict[str, Any]:
        from svix.api import MessageAttemptListAttemptedMessagesOptions, RecoverIn

        svix = self.webhooks.environments[request.mode].client
        with outage():
            app_id, endpoint = self._endpoint(api_key_id, request.mode)
            count, iterator = 0, None
            for _ in range(_COUNT_PAGES):
                options = MessageAttemptListAttemptedMessagesOptions(
                    limit=_PAGE,
                    iterator=iterator,
                    status=_status("failed"),
                    after=request.since,
                    before=request.until,
                )
                page = svix.message_attempt.list_attempted_messages(app_id, endpoint.id, options)
                count += len(page.data)
                if page.done or not page.iterator:
                    break
                iterator = page.iterator
            svix.endpoint.recover(
                app_id, endpoint.id, RecoverIn(since=request.since, until=request.until)
            )
        return {"recovered": count}

    def resend(
        self, request: EventRequest, api_key_id: str, now: datetime, deadline: float | None = None
    ) -> dict[str, Any]:
        svix = self.webhooks.environments[request.mode].client
        with outage():
            app_id, message = self._message(request, api_key_id, now)
            _, endpoint = self._endpoint(api_key_id, request.mode)
            svix.message_attempt.resend(app_id, message.id, endpoint.id)
        return {
            "eventId": request.event_id,
            "eventType": message.event_type,
            "mode": request.mode,
            "apiKeyId": api_key_id,
            "svixMessageId": message.id,
        }

    def _message(self, request: EventRequest, api_key_id: str, now: datetime) -> tuple[str, Any]:
        svix = self.webhooks.environments[request.mode].client
        app = get_or_none(lambda: svix.application.get(api_key_id))
        message = get_or_none(lambda: svix.message.get(app.id, request.event_id)) if app else None
        oldest = window_start(now, self.log_days)
        if message is None or message.event_id != request.event_id or message.timestamp < oldest:
            raise EventNotFound()
        return app.id, message

    def _endpoint(self, api_key_id: str, mode: str) -> tuple[str, Any]:
        svix = self.webhooks.environments[mode].client
        app = get_or_none(lambda: svix.application.get(api_key_id))
        endpoint = get_or_none(lambda: svix.endpoint.get(app.id, mode)) if app else None
        if endpoint is None:
            raise WebhookNotConfigured(WebhookNotConfigured.NO_ENDPOINT)
        if endpoint.disabled:
            raise WebhookDisabled()
        return app.id, endpoint


def _status(status: str | None) -> Any:
    from svix.models import MessageStatus

    return MessageStatus(_SVIX_STATUS[status]) if status else None


def _event_view(message: Any, endpoint_id: str | None) -> dict[str, Any]:
    payload = message.payload if isinstance(message.payload, dict) else {}
    status = getattr(message, "status", None)
    delivery: dict[str, Any] = {
        "endpointId": endpoint_id,
        "status": _STATUS.get(int(status), "pending") if status is not None else "skipped",
        "attempts": 0,  # Svix does not count them here; list_attempts shows each
        "lastAttemptAt": None,
        "lastHttpStatus": None,
    }
    if delivery["status"] == "pending":
        delivery["nextAttemptAt"] = time_text(getattr(message, "next_attempt", None))
    entry: dict[str, Any] = {
        "eventId": message.event_id,
        "eventType": message.event_type,
        "createdAt": time_text(message.timestamp),
        "apiProjectId": payload.get("apiProjectId"),
        "generationId": payload.get("generationId"),
        "delivery": delivery,
        "payload": payload,
    }
    if TEST_TAG in (message.tags or []):
        entry["test"] = True
    return entry


def _attempt_view(attempt: Any) -> dict[str, Any]:
    """A Svix attempt in the contract's words; its ``url`` is never copied out."""
    code = attempt.response_status_code or None
    delivered = int(attempt.status) == 0
    error = None if delivered else (f"HTTP {code}" if code else "no HTTP answer")
    return {
        "attemptId": attempt.id,
        "endpointId": attempt.endpoint_id,
        "at": time_text(attempt.timestamp),
        "trigger": "resend" if int(attempt.trigger_type) == _MANUAL else "event",
        "status": "delivered" if delivered else "failed",
        "httpStatus": code,
        "error": error,
        "durationMs": attempt.response_duration_ms,
        "response": (attempt.response or "")[:MAX_RESPONSE_CHARS] or None,
    }


def _endpoint_view(endpoint: Any) -> dict[str, Any] | None:
    if endpoint is None:
        return None
    return {
        "endpointId": endpoint.id,
        "disabled": bool(endpoint.disabled),
        "disabledReason": None,
        "disabledAt": None,
    }
