"""The ``svix`` sink: one Svix application per API key, one message per event, never twice.

The ``svix`` client library makes every call (no hand-written HTTP). The
application's ``uid`` is the ``apiKeyId`` (created on first use, then
remembered); a message carries ``eventType``, ``eventId`` and the payload, with
the ``eventId`` as idempotency key, so a retried delivery is never a second
message. ``SVIX_SERVER_URL`` points it at a regional or self-hosted server.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

import httpx

from diffio_progress.core.deliveries import SVIX_DELIVERY, Delivery, scheduled

from ..caches import LockedCache
from .outbox_event import OutboxEvent
from .sinks import OURS, SendResult

log = logging.getLogger(__name__)

# Svix answers 409 to a second message with the same eventId (after the idempotency
# key's own window): that event is already with Svix.
_CONFLICT = 409
_APPS_REMEMBERED = 10_000


class SvixSink:
    """Delivers through Svix; safe to share across threads (httpx's client is)."""

    name = "svix"

    def __init__(self, token: str, server_url: str | None, timeout: float = 10.0) -> None:
        # Imported here: the library costs about a second to import, and only this sink needs it.
        from svix.api import Svix, SvixOptions

        self._svix = Svix(token, SvixOptions(server_url=server_url, timeout=timeout))
        # The application and the message; a send that outlives its lease is still one
        # message, as Svix deduplicates by the idempotency key.
        self.deadline_seconds = 2 * timeout
        self._apps: LockedCache[str, str] = LockedCache(_APPS_REMEMBERED)

    @property
    def client(self) -> Any:
        """The ``svix.api.Svix`` client (the webhooks API manages endpoints with it)."""
        return self._svix

    def session(self, api_key_id: str) -> _SvixSession:
        return _SvixSession(self, api_key_id)

    def close(self) -> None:
        # The library keeps one httpx client (and its pooled connections) per Svix object.
        self._svix._httpx_client.close()

    def application(self, api_key_id: str) -> str:
        """The id of the key's Svix application, created the first time it is needed."""
        known = self._apps.get(api_key_id)
        if known is None:
            from svix.api import ApplicationIn

            app = self._svix.application.get_or_create(
                ApplicationIn(name=api_key_id, uid=api_key_id)
            )
            known = app.id
            self._apps.set(api_key_id, known)
        return known

    def create_message(self, app_id: str, event: OutboxEvent) -> None:
        from svix.api import MessageCreateOptions, MessageIn

        self._svix.message.create(
            app_id,
            MessageIn(event_type=event.event_type, event_id=event.event_id, payload=event.payload),
            MessageCreateOptions(idempotency_key=event.event_id),
        )


class _SvixSession:
    def __init__(self, sink: SvixSink, api_key_id: str) -> None:
        self._sink = sink
        self._api_key_id = api_key_id

    def deliveries_for(self, event_type: str, now: datetime) -> dict[str, Delivery]:
        """One delivery, the hand-off to Svix (which fans out to the key's endpoints)."""
        return {SVIX_DELIVERY: scheduled(now)}

    def send(self, event: OutboxEvent, endpoint_ids: list[str]) -> list[SendResult]:
        return [self._send(event)] if endpoint_ids else []

    def health_change(self, result: SendResult, now: datetime) -> dict[str, Any] | None:
        return None  # Svix keeps its endpoints' health itself

    def _send(self, event: OutboxEvent) -> SendResult:
        from svix.exceptions import HttpError, HTTPValidationError

        started = time.monotonic()
        error = None
        status = None
        try:
            self._sink.create_message(self._sink.application(self._api_key_id), event)
        except (HttpError, HTTPValidationError) as failed:
            status = failed.status_code
            if status != _CONFLICT:
                error = f"Svix answered HTTP {status} {_code(failed)}"
        except httpx.HTTPError as failed:
            # The message names the failure, never the request's Authorization header.
            error = f"Svix unreachable: {type(failed).__name__}"
        except ValueError:
            # An error answer that is not Svix's JSON (a proxy's HTML page, say).
            error = "Svix answered with an unreadable error"
        took = round((time.monotonic() - started) * 1000)
        if error is None:
            return SendResult(SVIX_DELIVERY, True, duration_ms=took)
        # Svix is our dependency: its failure is ours, never the client's endpoint's.
        return SendResult(
            SVIX_DELIVERY, http_status=status, error=error, duration_ms=took, failure_kind=OURS
        )


def _code(error: Any) -> str:
    code = getattr(error, "code", "")
    return code if isinstance(code, str) else "validation"
