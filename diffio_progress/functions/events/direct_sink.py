"""The ``direct`` sink: POST each event to the key's live endpoints, signed as Svix signs.

Endpoints are read once per call (one query on ``apiKeyId``) from the
``webhooks`` database; ``(default)`` is never read for them. An event goes
to all of them at once, each on its own thread (at most ``MAX_ENDPOINTS``), so
a slow endpoint never holds another back; each POST has the delivery's deadline,
and none outlives the call's one overall deadline. Each delivery is the JSON
payload with ``svix-id`` (the ``eventId``), ``svix-timestamp`` and
``svix-signature`` made by the ``svix`` library, so the official SDK's
``client.webhooks.verify_signature`` accepts it. A malformed or refused
endpoint is skipped with one warning naming its id, never its secret. Secrets
are stored sealed (``secret_box``); one that cannot be opened makes each send
to its endpoint a failed attempt of ours (``failureKind`` ``ours``), never an exception.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from google.cloud.firestore_v1.base_query import FieldFilter

# A second to import: at start (wiring imports this module only for this sink), never
# inside a call, where it would hold up every delivery behind the import lock.
from svix.webhooks import Webhook

from diffio_progress.core.endpoints import (
    ENDPOINTS,
    Endpoint,
    EndpointRefused,
    is_enabled,
    read_endpoint,
    wants,
)
from diffio_progress.core.errors import SecretUnavailable
from diffio_progress.core.webhook_records import LIVE, mode_of

from ..clock import utcnow
from ..firestore import FirestoreConnection
from ..secret_box import SecretBox, opened
from .outbox import OutboxEvent
from .pinned_post import DeliveryError, DeliveryRefused, PinnedPoster
from .sinks import Delivery

log = logging.getLogger(__name__)

USER_AGENT = "diffio-progress-webhooks/1"
# More endpoints than this for one key is a mistake, not a fan-out to honour;
# it is also how many POSTs of one event run at once.
MAX_ENDPOINTS = 20
# One call's deliveries (up to three events, each to every endpoint at once) end by then.
CALL_DEADLINE_SECONDS = 30.0
_REACHED, _REFUSED = "reached", "refused"


def body_bytes(payload: dict[str, Any]) -> bytes:
    """The exact bytes that are signed and sent."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signed_headers(
    secrets: Sequence[str], event_id: str, body: bytes, now: datetime
) -> dict[str, str]:
    """The Svix scheme's three headers for ``body``, signed by the ``svix`` library.

    One signature per secret, space-separated (Standard Webhooks), so a receiver
    verifying with any one of them accepts the delivery during a rotation.
    """
    text = body.decode("utf-8")
    signature = " ".join(Webhook(secret).sign(event_id, now, text) for secret in secrets)
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "svix-id": event_id,
        "svix-timestamp": str(int(now.timestamp())),
        "svix-signature": signature,
    }


class DirectSink:
    """Delivers to the endpoints of each key; safe to share across threads."""

    name = "direct"

    def __init__(
        self,
        connection: FirestoreConnection,
        poster: PinnedPoster,
        box: SecretBox | None = None,
        clock: Callable[[], datetime] = utcnow,
        call_deadline_seconds: float = CALL_DEADLINE_SECONDS,
    ) -> None:
        self._connection = connection
        self.poster = poster
        self._box = box
        self._clock = clock
        self.call_deadline_seconds = call_deadline_seconds

    @property
    def deadline_seconds(self) -> float:
        """The longest one event's delivery takes: every endpoint at once, one deadline."""
        return self.poster.deadline_seconds

    def session(self, api_key_id: str) -> _DirectSession:
        ends = time.monotonic() + self.call_deadline_seconds
        found, sealed = self.read(api_key_id)
        return _DirectSession(self, found, ends, sealed)

    def close(self) -> None:
        pass  # every delivery opens and closes its own connection

    def endpoints(self, api_key_id: str) -> list[Endpoint]:
        """The key's enabled, well-formed endpoints; each malformed one is warned about once."""
        return self.read(api_key_id)[0]

    def read(self, api_key_id: str) -> tuple[list[Endpoint], dict[str, dict[str, Any]]]:
        """The key's enabled, well-formed endpoints, and those whose secret does not open
        (id -> document)."""
        connection = self._connection
        with connection.guarded() as client:
            query = (
                client.collection(ENDPOINTS)
                .where(filter=FieldFilter("apiKeyId", "==", api_key_id))
                .limit(MAX_ENDPOINTS)
            )
            snapshots = query.get(retry=connection.retry, timeout=connection.timeout)
        found, sealed = [], {}
        for snapshot in snapshots:
            document = snapshot.to_dict() or {}
            # A generation's events go to live endpoints only (webhooks-api.md §5).
            if not is_enabled(document) or mode_of(document) != LIVE:
                continue
            try:
                document = opened(self._box, snapshot.id, document)
            except SecretUnavailable as unavailable:
                sealed[snapshot.id] = {**document, "unavailable": str(unavailable)}
                continue
            try:
                endpoint = read_endpoint(
                    snapshot.id, document, self.poster.allow_private, self._clock()
                )
                found.append(endpoint)
            except EndpointRefused as refused:
                log.warning(
                    "webhook endpoint %s skipped: %s",
                    snapshot.id,
                    refused,
                    extra={"fields": {"endpointId": snapshot.id}},
                )
        return found, sealed

    def signed(self, endpoint: Endpoint, event: OutboxEvent) -> tuple[bytes, dict[str, str]]:
        """The body and headers of ``event`` for ``endpoint``: CPU work, before any deadline."""
        body = body_bytes(event.payload)
        return body, signed_headers(endpoint.secrets, event.event_id, body, self._clock())


class _DirectSession:
    def __init__(
        self,
        sink: DirectSink,
        endpoints: list[Endpoint],
        call_deadline: float,
        sealed: dict[str, dict[str, Any]],
    ) -> None:
        self._sink = sink
        self._endpoints = endpoints
        self._call_deadline = call_deadline
        self._refused: set[str] = set()
        self._sealed = sealed

    def send(self, event: OutboxEvent) -> Delivery:
        """POST ``event`` to every endpoint that wants it and lacks it, all at once."""
        unopened = tuple(self._unopened(event))
        sent = self._send(event)
        return Delivery(sent.delivered_to, sent.failures + unopened)

    def _unopened(self, event: OutboxEvent) -> Iterator[str]:
        """A failed attempt of ours for each endpoint due ``event`` whose secret does not open."""
        for endpoint_id, document in self._sealed.items():
            if endpoint_id in event.delivered_to or not wants(document, event.event_type):
                continue
            # The call's one error line names this failure; this line says why, and whose.
            log.warning(
                "webhook endpoint %s: signing secret unavailable: %s",
                endpoint_id,
                document["unavailable"],
                extra={"fields": {"endpointId": endpoint_id, "failureKind": "ours"}},
            )
            yield f"endpoint {endpoint_id}: the signing secret cannot be decrypted"

    def _send(self, event: OutboxEvent) -> Delivery:
        due = [
            endpoint
            for endpoint in self._endpoints
            # Not subscribed, reached on an earlier attempt, or refused by the SSRF rules.
            if endpoint.wants(event.event_type)
            and endpoint.endpoint_id not in event.delivered_to
            and endpoint.endpoint_id not in self._refused
        ]
        if not due:
            return Delivery()
        requests = [self._sink.signed(endpoint, event) for endpoint in due]
        deadline = min(time.monotonic() + self._sink.deadline_seconds, self._call_deadline)

        def post(index: int) -> str:
            return self._post(due[index], event, *requests[index], deadline)

        if len(due) == 1:
            results = [post(0)]
        else:
            with ThreadPoolExecutor(len(due), thread_name_prefix="webhook-post") as pool:
                results = list(pool.map(post, range(len(due))))
        delivered = tuple(e.endpoint_id for e, r in zip(due, results, strict=True) if r == _REACHED)
        return Delivery(delivered, tuple(r for r in results if r not in (_REACHED, _REFUSED)))

    def _post(
        self,
        endpoint: Endpoint,
        event: OutboxEvent,
        body: bytes,
        headers: dict[str, str],
        deadline: float,
    ) -> str:
        """One endpoint's delivery: ``_REACHED``, ``_REFUSED`` or the failure, safe to log."""
        started = time.monotonic()
        try:
            self._sink.poster.post(endpoint.url, body, headers, deadline)
        except DeliveryRefused as refused:
            # Never retried: the rule will refuse it again.
            self._refused.add(endpoint.endpoint_id)
            log.warning(
                "webhook endpoint %s skipped: %s",
                endpoint.endpoint_id,
                refused,
                extra={"fields": {"endpointId": endpoint.endpoint_id}},
            )
            return _REFUSED
        except DeliveryError as failed:
            return f"endpoint {endpoint.endpoint_id}: {failed}"
        log.info(
            "delivered %s to webhook endpoint %s",
            event.event_type,
            endpoint.endpoint_id,
            extra={
                "fields": {
                    "endpointId": endpoint.endpoint_id,
                    "eventId": event.event_id,
                    "latencySeconds": round(time.monotonic() - started, 4),
                }
            },
        )
        return _REACHED
