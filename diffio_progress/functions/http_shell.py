"""The HTTP shell every public function shares: method, body limit, CORS, errors, the log line.

Each public function (the progress poll, the two webhooks functions) hands
``serve`` the request and a function that turns the body into an answer. The
shell answers ``OPTIONS`` and wrong methods, reads at most ``MAX_BODY_BYTES``,
turns ``ApiError`` into its JSON, a Firestore outage into 503 and anything else
into a generic 500, adds the quota headers, and writes the one log line.
``admitted_key`` is the shared start of authentication: the key from the
headers, then admission (429) before anything is read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import flask

from diffio_progress.core.auth import hash_api_key, header_bytes, invalid_key, missing_key
from diffio_progress.core.errors import ApiError, StoreUnavailable
from diffio_progress.core.request import (
    MAX_API_KEY_CHARS,
    check_method,
    client_address,
    extract_api_key,
)

from . import logs
from .admission import Admission, Admitted, Quota
from .config import Settings
from .responses import error_response, internal_error, json_response, preflight, unavailable

log = logging.getLogger(__name__)


@dataclass
class Exchange:
    """What one request learned on its way: for its headers and its log line."""

    context: dict[str, Any] = field(default_factory=dict)
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


def serve(settings: Settings, request: flask.Request, answer: Answer, what: str) -> flask.Response:
    """Answer ``request`` with ``answer``'s body (200) or the error it raised; log one line.

    ``what`` names the function in the log line of an unexpected error.
    """
    started = time.perf_counter()
    origin = request.headers.get("Origin")
    exchange = Exchange()
    response = _respond(settings, request, answer, what, origin, exchange)
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
    logs.log_exchange(request, response.status_code, started, settings.project, exchange.context)
    return response


def _respond(
    settings: Settings,
    request: flask.Request,
    answer: Answer,
    what: str,
    origin: str | None,
    exchange: Exchange,
) -> flask.Response:
    context = exchange.context
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
    except ApiError as error:
        context["code"] = error.code
        return error_response(settings, origin, error)
    except StoreUnavailable:
        context["code"] = "unavailable"
        return error_response(settings, origin, unavailable())
    except Exception:
        # The stack trace goes to the log; the client learns nothing internal.
        log.exception("unexpected error answering a %s request", what)
        context["code"] = "internal_error"
        return error_response(settings, origin, internal_error())


def _read_body(settings: Settings, request: flask.Request, exchange: Exchange) -> bytes:
    limit = settings.max_body_bytes
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
        raise missing_key()
    if len(key) > MAX_API_KEY_CHARS:
        raise invalid_key()
    key_hash = hash_api_key(header_bytes(key))
    admitted = admission.admit(key_hash, address)
    exchange.quota = admitted.quota
    return key_hash, admitted
