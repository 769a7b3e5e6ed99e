"""The shell: validate, admit, read (coalesced), respond; and log one line per request."""

from __future__ import annotations

import copy
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import flask

from diffio_progress.core.auth import hash_api_key, header_bytes
from diffio_progress.core.errors import (
    ApiError,
    ApiKeyInvalid,
    ApiKeyMissing,
    BodyTooLarge,
    KeyRefused,
)
from diffio_progress.core.progress import LiveLookup
from diffio_progress.core.request import (
    MAX_API_KEY_CHARS,
    ProgressQuery,
    check_method,
    client_address,
    extract_api_key,
    parse_body,
)

from .. import logs
from ..admission import Admission, Quota
from ..clock import utcnow
from ..config import Settings
from ..responses import json_response, preflight, respond_to_error
from ..store import FirestoreStore
from .coalescing import Coalescer
from .reads import PollRead, ProgressReader


@dataclass
class _Exchange:
    """What one request learned on its way: for its headers and its log line."""

    log_fields: dict[str, Any] = field(default_factory=dict)
    quota: Quota | None = None
    # Bytes of the request body left unread: the connection cannot be reused.
    body_left: bool = False


class ProgressHandler:
    """Answers ``get_generation_progress`` requests; safe to share across threads."""

    def __init__(
        self,
        settings: Settings,
        store: FirestoreStore,
        live_lookup: LiveLookup | None = None,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.reader = ProgressReader(settings, store, live_lookup, clock, monotonic)
        self.admission = Admission(settings, monotonic)
        self.flights: Coalescer[tuple[str, str, str | None], PollRead] = Coalescer()

    # -- HTTP boundary ---------------------------------------------------

    def __call__(self, request: flask.Request) -> flask.Response:
        started = time.perf_counter()
        origin = request.headers.get("Origin")
        exchange = _Exchange()
        response = self._respond(request, origin, exchange)
        if exchange.quota is not None:
            for name, value in exchange.quota.headers().items():
                response.headers.setdefault(name, value)
        if exchange.body_left:
            # The rest of the body is still on the wire: reusing the connection would
            # read it as the next request. Say so, and close (main.py makes the server).
            response.headers["Connection"] = "close"
        # What is left of the body (OPTIONS, 405, 413, or past what we read) must stay
        # unread: functions-framework reads the whole body before answering (its
        # read_request), into memory and at a slow client's pace. It reads ``stream``,
        # which werkzeug documents as a cached property that may be set: an empty one.
        request.stream = io.BytesIO()
        logs.log_exchange(
            request, response.status_code, started, self.settings.project, exchange.log_fields
        )
        return response

    def _respond(
        self, request: flask.Request, origin: str | None, exchange: _Exchange
    ) -> flask.Response:
        log_fields = exchange.log_fields
        try:
            if request.method == "OPTIONS":
                exchange.body_left = _has_body(request)
                return preflight(self.settings, origin)
            if request.method != "POST":
                exchange.body_left = _has_body(request)
            check_method(request.method)
            query = parse_body(self._read_body(request, exchange))
            log_fields["generationId"] = query.generation_id
            address = client_address(
                request.headers.get("X-Forwarded-For"),
                request.remote_addr,
                self.settings.trusted_proxy_hops,
            )
            body = self.progress(query, request.headers, exchange, address)
            return json_response(self.settings, origin, 200, body)
        except Exception as error:
            response, log_fields["code"] = respond_to_error(self.settings, origin, error)
            return response

    def _read_body(self, request: flask.Request, exchange: _Exchange) -> bytes:
        limit = self.settings.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            exchange.body_left = True
            raise BodyTooLarge(limit)
        # Never more than the limit and a byte: a huge body stays out of memory.
        raw = request.stream.read(limit + 1)
        if len(raw) > limit:
            exchange.body_left = True
            raise BodyTooLarge(limit)
        return raw

    # -- the request, after parsing ---------------------------------------

    def progress(
        self,
        query: ProgressQuery,
        headers: Any,
        exchange: _Exchange | None = None,
        address: str | None = None,
    ) -> dict[str, Any]:
        """Admit the caller, then read; identical polls in flight share one read."""
        exchange = exchange or _Exchange()
        key = extract_api_key(headers)
        if key is None:
            raise ApiKeyMissing()
        if len(key) > MAX_API_KEY_CHARS:
            raise ApiKeyInvalid()
        key_hash = hash_api_key(header_bytes(key))
        admitted = self.admission.admit(key_hash, address)
        exchange.quota = admitted.quota
        flight = (key_hash, query.generation_id, query.api_project_id)
        read = self.flights.run(flight, lambda: self._read(query, key_hash))
        if _key_worked(read):
            # Each request that joined the read gets its own charge back.
            self.admission.accepted(key_hash, admitted)
        exchange.log_fields.update(read.log_fields)
        if read.error is not None:
            # A copy each: the followers of one read raise in their own threads.
            raise copy.copy(read.error)
        assert read.body is not None
        return read.body

    def _read(self, query: ProgressQuery, key_hash: str) -> PollRead:
        read = self.reader.read(key_hash, query.generation_id, query.api_project_id)
        if isinstance(read.error, KeyRefused):
            self.admission.refused(key_hash, read.error)
        return read


def _key_worked(read: PollRead) -> bool:
    """Whether the key authorized, whatever came after (200, 403 or 404).

    The reader authorizes before anything else can refuse: any other refusal
    (not found, not the owner) came to a key that works.
    """
    return read.error is None or (
        isinstance(read.error, ApiError) and not isinstance(read.error, KeyRefused)
    )


def _has_body(request: flask.Request) -> bool:
    """Whether the request came with a body (a length over 0, or chunked)."""
    if request.content_length:
        return True
    return "chunked" in (request.headers.get("Transfer-Encoding") or "").lower()
