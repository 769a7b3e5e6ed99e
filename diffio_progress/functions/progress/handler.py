"""The shell: validate, admit, read (coalesced), respond; and log one line per request."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import flask

from diffio_progress.core.auth import hash_api_key, header_bytes, invalid_key, missing_key
from diffio_progress.core.errors import ApiError, StoreUnavailable
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
from ..config import Settings
from ..responses import error_response, internal_error, json_response, preflight, unavailable
from ..store import FirestoreStore
from .coalescing import Coalescer
from .reads import ProgressReader

log = logging.getLogger(__name__)

# The key decisions that mean "this key may not read": remembered for a while.
KEY_REFUSALS = frozenset(
    {"api_key_invalid", "api_key_inactive", "api_key_expired", "permission_denied"}
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Exchange:
    """What one request learned on its way: for its headers and its log line."""

    context: dict[str, Any] = field(default_factory=dict)
    quota: Quota | None = None
    # Bytes of the request body left unread: the connection cannot be reused.
    body_left: bool = False


@dataclass(frozen=True)
class _Outcome:
    """One read's result, shared by every poll that joined it."""

    body: dict[str, Any] | None
    error: ApiError | StoreUnavailable | None
    context: dict[str, Any]
    # The key authorized (whatever came after: 200, 403 or 404).
    key_worked: bool


class ProgressHandler:
    """Answers ``get_generation_progress`` requests; safe to share across threads."""

    def __init__(
        self,
        settings: Settings,
        store: FirestoreStore,
        live_lookup: LiveLookup | None = None,
        clock: Callable[[], datetime] = _utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.reader = ProgressReader(settings, store, live_lookup, clock, monotonic)
        self.admission = Admission(settings, monotonic)
        self.flights: Coalescer[tuple[str, str, str | None], _Outcome] = Coalescer()

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
        # A body we never read (OPTIONS, 405, 413) must stay unread: functions-framework
        # would read all of it into memory before answering.
        if getattr(request, "_cached_data", None) is None:
            request._cached_data = b""
        logs.log_exchange(
            request, response.status_code, started, self.settings.project, exchange.context
        )
        return response

    def _respond(
        self, request: flask.Request, origin: str | None, exchange: _Exchange
    ) -> flask.Response:
        context = exchange.context
        try:
            if request.method == "OPTIONS":
                exchange.body_left = _has_body(request)
                return preflight(self.settings, origin)
            if request.method != "POST":
                exchange.body_left = _has_body(request)
            check_method(request.method)
            query = parse_body(self._read_body(request, exchange))
            context["generationId"] = query.generation_id
            address = client_address(
                request.headers.get("X-Forwarded-For"),
                request.remote_addr,
                self.settings.trusted_proxy_hops,
            )
            body = self.progress(query, request.headers, exchange, address)
            return json_response(self.settings, origin, 200, body)
        except ApiError as error:
            context["code"] = error.code
            return error_response(self.settings, origin, error)
        except StoreUnavailable:
            context["code"] = "unavailable"
            return error_response(self.settings, origin, unavailable())
        except Exception:
            # The stack trace goes to the log; the client learns nothing internal.
            log.exception("unexpected error answering a progress request")
            context["code"] = "internal_error"
            return error_response(self.settings, origin, internal_error())

    def _read_body(self, request: flask.Request, exchange: _Exchange) -> bytes:
        limit = self.settings.max_body_bytes
        too_large = ApiError(413, "body_too_large", f"Request body must be at most {limit} bytes")
        if request.content_length is not None and request.content_length > limit:
            # Mark the body as read, or functions-framework reads all of it into memory
            # before our 413 goes out (and waits for every byte a slow client trickles).
            request._cached_data = b""
            exchange.body_left = True
            raise too_large
        raw = request.stream.read(limit + 1)
        # functions-framework reads the whole body after we answer unless it
        # finds it cached; caching what we read keeps a huge body out of memory.
        request._cached_data = raw
        if len(raw) > limit:
            exchange.body_left = True
            raise too_large
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
            raise missing_key()
        if len(key) > MAX_API_KEY_CHARS:
            raise invalid_key()
        key_hash = hash_api_key(header_bytes(key))
        admitted = self.admission.admit(key_hash, address)
        exchange.quota = admitted.quota
        flight = (key_hash, query.generation_id, query.api_project_id)
        outcome = self.flights.run(flight, lambda: self._read(query, key_hash))
        if outcome.key_worked:
            # Each request that joined the read gets its own charge back.
            self.admission.accepted(key_hash, admitted)
        exchange.context.update(outcome.context)
        if outcome.error is not None:
            # A copy each: the followers of one read raise in their own threads.
            raise copy.copy(outcome.error)
        assert outcome.body is not None
        return outcome.body

    def _read(self, query: ProgressQuery, key_hash: str) -> _Outcome:
        context: dict[str, Any] = {}
        try:
            body = self.reader.read(key_hash, query.generation_id, query.api_project_id, context)
        except ApiError as error:
            # The reader authorizes before anything else can refuse: any other
            # refusal (not found, not the owner) came to a key that works.
            if error.code in KEY_REFUSALS:
                self.admission.refused(key_hash, error)
                return _Outcome(None, error, context, key_worked=False)
            return _Outcome(None, error, context, key_worked=True)
        except StoreUnavailable as error:
            return _Outcome(None, error, context, key_worked=False)
        return _Outcome(body, None, context, key_worked=True)


def _has_body(request: flask.Request) -> bool:
    """Whether the request came with a body (a length over 0, or chunked)."""
    if request.content_length:
        return True
    return "chunked" in (request.headers.get("Transfer-Encoding") or "").lower()
