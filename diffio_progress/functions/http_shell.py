"""The HTTP shell every public function shares: method, body limit, CORS, errors, the log line.

Each public function (the progress poll, the six webhooks functions) hands
``serve`` the request and a function that turns the body into an answer. The
shell answers ``OPTIONS`` and wrong methods, reads at most ``MAX_BODY_BYTES``,
turns ``ApiError`` into its JSON, a Firestore outage into 503 and anything else
into a generic 500, adds the quota headers, and writes the one log line.
``admitted_key`` is the shared start of authentication: the key from the
headers, then admission (429) before anything is read.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import flask

from diffio_progress.core.auth import hash_api_key, header_bytes
from diffio_progress.core.errors import ApiKeyInvalid, ApiKeyMissing, BodyTooLarge
from diffio_progress.core.request import (
    MAX_API_KEY_CHARS,
    check_method,
    client_address,
    extract_api_key,
)

from . import logs
from .admission import Admission, Admitted, Quota
from .config import Settings
from .responses import json_response, preflight, respond_to_error


@dataclass
class Exchange:
    """What one request learned on its way: for its headers and its log line."""

    log_fields: dict[str, Any] = field(default_factory=dict)
    quota: Quota | None = None
    # Bytes of the request body left unread: the connection cannot be reused.
    body_left: bool = False


@dataclass(frozen=True)
class Call:
    """A POST that passed the shell's checks: its body (at most the limit), headers, caller."""

    raw: bytes
    headers: Any
    address: str | None
    exchange: Exchange


Answer = Callable[[Call], dict[str, Any]]


def serve(settings: Settings, request: flask.Request, answer: Answer) -> flask.Response:
    """Answer ``request`` with ``answer``'s body (200) or the error it raised; log one line."""
    started = time.perf_counter()
    origin = request.headers.get("Origin")
    exchange = Exchange()
    response = _respond(settings, request, answer, origin, exchange)
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
    logs.log_exchange(request, response.status_code, started, settings.project, exchange.log_fields)
    return response


def _respond(
    settings: Settings,
    request: flask.Request,
    answer: Answer,
    origin: str | None,
    exchange: Exchange,
) -> flask.Response:
    try:
        if request.method == "OPTIONS":
            exchange.body_left = _has_body(request)
            return preflight(settings, origin)
        if request.method != "POST":
            exchange.body_left = _has_body(request)
        check_method(request.method)
        raw = _read_body(settings, request, exchange)
        address = client_address(
            request.headers.get("X-Forwarded-For"),
            request.remote_addr,
            settings.trusted_proxy_hops,
        )
        body = answer(Call(raw, request.headers, address, exchange))
        return json_response(settings, origin, 200, body)
    except Exception as error:
        # An ApiError as itself, an outage as 503, anything else (logged) as 500.
        response, exchange.log_fields["code"] = respond_to_error(settings, origin, error)
        return response


def _read_body(settings: Settings, request: flask.Request, exchange: Exchange) -> bytes:
    limit = settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        exchange.body_left = True
        raise BodyTooLarge(limit)
    # Never more than the limit and a byte: a huge body stays out of memory.
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        exchange.body_left = True
        raise BodyTooLarge(limit)
    return raw


def _has_body(request: flask.Request) -> bool:
    """Whether the request came with a body (a length over 0, or chunked)."""
    if request.content_length:
        return True
    return "chunked" in (request.headers.get("Transfer-Encoding") or "").lower()


def admitted_key(
    admission: Admission, headers: Any, address: str | None, exchange: Exchange
) -> tuple[str, Admitted]:
    """The hash of the caller's key, once admission let it through, and what admission charged
    (given back with ``Admission.accepted`` once the key works).

    Raises 401 for a missing or oversized key and 429 (or a remembered
    refusal) from ``Admission``; nothing has been read from Firestore yet.
    """
    key = extract_api_key(headers)
    if key is None:
        raise ApiKeyMissing()
    if len(key) > MAX_API_KEY_CHARS:
        raise ApiKeyInvalid()
    key_hash = hash_api_key(header_bytes(key))
    admitted = admission.admit(key_hash, address)
    exchange.quota = admitted.quota
    return key_hash, admitted
