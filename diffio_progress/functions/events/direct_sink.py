"""The ``direct`` sink: POST each event to the key's live endpoints, signed as Svix signs.

Endpoints are read once per call (one query on ``apiKeyId``) from the
``webhooks`` database; ``(default)`` is never read for them. An event goes
to all of them at once, each on its own thread (at most ``MAX_ENDPOINTS``), so
a slow endpoint never holds another back; each POST has the delivery's deadline,
and none outlives the call's one overall deadline. Each delivery is the JSON
payload with ``svix-id`` (the ``eventId``), ``svix-timestamp`` and
``svix-signature`` made by the ``svix`` library, so the official SDK's
``client.webhooks.verify_signature`` accepts it. A disabled, malformed or
refused endpoint is skipped (with one warning naming its id, never its secret):
its deliveries become ``skipped``. Secrets are stored sealed (``secret_box``); one
that cannot be opened makes each send to its endpoint a failed attempt of ours
(``failureKind`` ``ours``), never an exception. Each attempt's outcome is
returned, for the schedule, the attempt's record and the endpoint's health.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from google.cloud.firestore_v1.base_query import FieldFilter

# A second to import: at start (wiring imports this module only for this sink), never
# inside a call, where it would hold up every delivery behind the import lock.
from svix.webhooks import Webhook

from diffio_progress.core import endpoint_health
from diffio_progress.core.deliveries import Delivery, scheduled, skipped
from diffio_progress.core.endpoints import ENDPOINTS, Endpoint, EndpointRefused, read_endpoint
from diffio_progress.core.errors import SecretUnavailable
from diffio_progress.core.webhook_records import LIVE, mode_of

from ..clock import utcnow
from ..firestore import FirestoreConnection
from ..secret_box import SecretBox, opened
from .outbox_event import OutboxEvent
from .pinned_post import DeliveryRefused, PinnedPoster
from .sinks import CALL_DEADLINE_SECONDS, ENDPOINT, OURS, SendResult, posted

log = logging.getLogger(__name__)

USER_AGENT = "diffio-progress-webhooks/1"
# More endpoints than this for one key is a mistake, not a fan-out to honour;
# it is also how many POSTs of one event run at once.
MAX_ENDPOINTS = 20


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
        disable_after: timedelta = endpoint_health.DISABLE_AFTER,
    ) -> None:
        self._connection = connection
        self.poster = poster
        self._box = box
        self._clock = clock
        self.call_deadline_seconds = call_deadline_seconds
        self.disable_after = disable_after

    @property
    def deadline_seconds(self) -> float:
        """The longest one event's delivery takes: every endpoint at once, one deadline."""
        return self.poster.deadline_seconds

    def session(self, api_key_id: str, ends: float | None = None) -> DirectSession:
        """The key's endpoints for one call, whose sends end by ``ends`` (a
        ``time.monotonic()`` value; the call's own deadline from now by default)."""
        ends = time.monotonic() + self.call_deadline_seconds if ends is None else ends
        return DirectSession(self, self.endpoints(api_key_id), ends)

    def close(self) -> None:
        pass  # every delivery opens and closes its own connection

    def endpoints(self, api_key_id: str) -> dict[str, dict[str, Any]]:
        """The key's live endpoint documents, by id (one query)."""
        connection = self._connection
        with connection.guarded() as client:
            query = (
                client.collection(ENDPOINTS)
                .where(filter=FieldFilter("apiKeyId", "==", api_key_id))
                .limit(MAX_ENDPOINTS)
            )
            snapshots = query.get(retry=connection.retry, timeout=connection.timeout)
        # A generation's events go to live endpoints only (webhooks-api.md §5).
        documents = ((s.id, s.to_dict() or {}) for s in snapshots)
        return {i: d for i, d in documents if mode_of(d) == LIVE}

    def read(self, endpoint_id: str, document: dict[str, Any]) -> Endpoint | None:
        """The endpoint, or None (warned about once, by id) when it cannot be sent to.

        Raises ``SecretUnavailable`` when its sealed secret does not open: a failure
        of ours, not the endpoint's.
        """
        plain = opened(self._box, endpoint_id, document)
        try:
            return read_endpoint(endpoint_id, plain, self.poster.allow_private, self._clock())
        except EndpointRefused as refused:
            log.warning(
                "webhook endpoint %s skipped: %s",
                endpoint_id,
                refused,
                extra={"fields": {"endpointId": endpoint_id}},
            )
            return None

    def signed(self, endpoint: Endpoint, event: OutboxEvent) -> tuple[bytes, dict[str, str]]:
        """The body and headers of ``event`` for ``endpoint``: CPU work, before any deadline."""
        body = body_bytes(event.payload)
        return body, signed_headers(endpoint.secrets, event.event_id, body, self._clock())


class DirectSession:
    """One key's endpoints for one call: read once, their health kept up to date."""

    def __init__(
        self, sink: DirectSink, documents: dict[str, dict[str, Any]], call_deadline: float
    ) -> None:
        self._sink = sink
        self._documents = documents
        self._call_deadline = call_deadline
        self._endpoints: dict[str, Endpoint | None] = {}
        # Endpoints whose sealed secret does not open, and why: each send to one is a
        # failed attempt of ours (retried on the schedule), never a skip.
        self._unopened: dict[str, str] = {}

    def _endpoint(self, endpoint_id: str) -> Endpoint | None:
        """The endpoint if it may be sent to now: it exists, is enabled and well-formed."""
        document = self._documents.get(endpoint_id)
        if document is None or endpoint_health.is_disabled(document):
            return None
        if endpoint_id not in self._endpoints:
            try:
                self._endpoints[endpoint_id] = self._sink.read(endpoint_id, document)
            except SecretUnavailable as unavailable:
                self._endpoints[endpoint_id] = None
                self._unopened[endpoint_id] = str(unavailable)
        return self._endpoints[endpoint_id]

    def _usable(self, endpoint_id: str) -> bool:
        return self._endpoint(endpoint_id) is not None or endpoint_id in self._unopened

    def deliveries_for(self, event_type: str, now: datetime) -> dict[str, Delivery]:
        """Every live endpoint that takes ``event_type``: pending, or skipped if it cannot."""
        found = {}
        for endpoint_id, document in self._documents.items():
            types = document.get("eventTypes")
            if isinstance(types, list) and types and event_type not in types:
                continue
            found[endpoint_id] = scheduled(now) if self._usable(endpoint_id) else skipped()
        return found

    def send(self, event: OutboxEvent, endpoint_ids: list[str]) -> list[SendResult]:
        """POST ``event`` to each endpoint at once; a disabled or refused one is skipped."""
        due = [(i, e) for i in endpoint_ids if (e := self._endpoint(i)) is not None]
        results = [
            self._unopened_result(i) if i in self._unopened else SendResult(i, skipped=True)
            for i in endpoint_ids
            if self._endpoint(i) is None
        ]
        if not due:
            return results
        requests = [self._sink.signed(endpoint, event) for _, endpoint in due]
        deadline = min(time.monotonic() + self._sink.deadline_seconds, self._call_deadline)

        def post(index: int) -> SendResult:
            return self._post(due[index][1], *requests[index], deadline)

        if len(due) == 1:
            return [*results, post(0)]
        with ThreadPoolExecutor(len(due), thread_name_prefix="webhook-post") as pool:
            return [*results, *pool.map(post, range(len(due)))]

    def _unopened_result(self, endpoint_id: str) -> SendResult:
        """A failed attempt of ours: the endpoint's signing secret cannot be opened."""
        log.error(
            "webhook endpoint %s: signing secret unavailable: %s",
            endpoint_id,
            self._unopened[endpoint_id],
            extra={"fields": {"endpointId": endpoint_id, "failureKind": OURS}},
        )
        error = "the signing secret cannot be decrypted"
        return SendResult(endpoint_id, error=error, failure_kind=OURS)

    def _post(
        self, endpoint: Endpoint, body: bytes, headers: dict[str, str], deadline: float
    ) -> SendResult:
        """One endpoint's attempt, its outcome safe to log and store."""
        endpoint_id = endpoint.endpoint_id
        try:
            return posted(self._sink.poster, endpoint_id, endpoint.url, body, headers, deadline)
        except DeliveryRefused as refused:
            # Never retried: the rule will refuse it again.
            self._endpoints[endpoint_id] = None
            log.warning(
                "webhook endpoint %s skipped: %s",
                endpoint_id,
                refused,
                extra={"fields": {"endpointId": endpoint_id}},
            )
            return SendResult(endpoint_id, skipped=True, error=str(refused))

    def health_change(self, result: SendResult, now: datetime) -> dict[str, Any] | None:
        """The endpoint fields this attempt changes; the session's copy follows at once."""
        document = self._documents.get(result.endpoint_id)
        if document is None or result.skipped or result.failure_kind not in (None, ENDPOINT):
            return None
        changed = endpoint_health.change(
            document, result.ok, result.http_status, now, self._sink.disable_after
        )
        if changed:
            document.update({k: v for k, v in changed.items() if v is not None})
            for gone in [k for k, v in changed.items() if v is None]:
                document.pop(gone, None)
        return changed
