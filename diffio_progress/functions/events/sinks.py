"""What a sink is: per call, a session for one API key that sends one event to named endpoints."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from diffio_progress.core.ssrf import WebhookUrl

from .outbox_event import OutboxEvent
from .pinned_post import DeliveryError, PinnedPoster

ENDPOINT, OURS = "endpoint", "ours"
# One session's sends (up to three events, each to every endpoint at once) end by then;
# the relay's sessions last its whole call.
CALL_DEADLINE_SECONDS = 30.0


@dataclass(frozen=True)
class SendResult:
    """How one attempt to one endpoint went; every text is safe to log and to store.

    ``skipped``: nothing was sent (the endpoint is disabled, gone, or its URL is
    refused). Otherwise ``ok`` (a 2xx, or Svix took it), or a failure whose
    ``failure_kind`` is ``endpoint`` (an answer or a network failure at the
    client's side) or ``ours`` (this project or its dependencies).
    """

    endpoint_id: str
    ok: bool = False
    skipped: bool = False
    http_status: int | None = None
    error: str | None = None
    retry_after: str | None = None
    response: str | None = None
    duration_ms: int = 0
    failure_kind: str | None = None


def posted(
    poster: PinnedPoster,
    endpoint_id: str,
    url: WebhookUrl,
    body: bytes,
    headers: Mapping[str, str],
    deadline: float | None,
) -> SendResult:
    """One POST to an endpoint as its attempt's outcome: a 2xx, or a failure at the client's
    side. ``DeliveryRefused`` (the URL rules) is raised: each caller treats it its own way."""
    started = time.monotonic()
    try:
        answer = poster.answer(url, body, headers, deadline)
    except DeliveryError as failed:
        got = failed.answer
        return SendResult(
            endpoint_id,
            http_status=failed.status,
            error=str(failed),
            retry_after=got.retry_after if got else None,
            response=got.response if got else None,
            duration_ms=_since(started),
            failure_kind=ENDPOINT,
        )
    return SendResult(
        endpoint_id,
        True,
        http_status=answer.status,
        response=answer.response,
        duration_ms=_since(started),
    )


def _since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


class SinkSession(Protocol):
    def deliveries_for(self, event_type: str, now: datetime) -> dict[str, Any]:
        """Endpoint id to ``core.deliveries.Delivery``: whom a new event of this type is for."""
        ...

    def send(self, event: OutboxEvent, endpoint_ids: list[str]) -> list[SendResult]:
        """One attempt of ``event`` to each of ``endpoint_ids``, at once."""
        ...

    def health_change(self, result: SendResult, now: datetime) -> dict[str, Any] | None:
        """The endpoint fields this attempt changes (core.endpoint_health), or None."""
        ...


class Sink(Protocol):
    name: str

    @property
    def deadline_seconds(self) -> float:
        """The longest one ``send`` may take: a delivery's lease outlasts it by a margin."""
        ...

    def session(self, api_key_id: str) -> SinkSession:
        """Get ready to send events of ``api_key_id`` (one Svix application, or its endpoints)."""
        ...

    def close(self) -> None:
        """Release connections kept open between calls."""
        ...
