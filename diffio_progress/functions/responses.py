"""JSON responses and CORS headers: the one place that shapes what goes on the wire."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import flask

from diffio_progress.core.errors import ApiError, InternalError, StoreUnavailable, Unavailable

from .config import Settings

log = logging.getLogger(__name__)

CORS_ALLOW_METHODS = "POST, OPTIONS"
CORS_ALLOW_HEADERS = "Authorization, Content-Type, X-Api-Key, Xi-Api-Key"


def cors_headers(settings: Settings, origin: str | None) -> dict[str, str]:
    """``Access-Control-Allow-Origin`` for every response.

    With ``*`` configured every origin is allowed. With a list, a listed
    origin is echoed back; any other origin gets the first listed one, which
    a browser will refuse, as it should.
    """
    allowed = settings.allowed_origins
    if "*" in allowed:
        return {"Access-Control-Allow-Origin": "*"}
    chosen = origin if origin in allowed else allowed[0]
    return {"Access-Control-Allow-Origin": chosen, "Vary": "Origin"}


def preflight(settings: Settings, origin: str | None) -> flask.Response:
    response = flask.Response(status=204)
    response.headers.update(cors_headers(settings, origin))
    response.headers.update(
        {
            "Access-Control-Allow-Methods": CORS_ALLOW_METHODS,
            "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
            "Access-Control-Max-Age": str(settings.cors_max_age),
        }
    )
    return response


def json_response(
    settings: Settings,
    origin: str | None,
    status: int,
    body: Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
) -> flask.Response:
    response = flask.Response(
        json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        status=status,
        mimetype="application/json",
    )
    response.headers.update(cors_headers(settings, origin))
    # Progress changes every second and error bodies are per-key: never cache.
    response.headers["Cache-Control"] = "no-store"
    response.headers.update(headers or {})
    return response


def error_response(settings: Settings, origin: str | None, error: ApiError) -> flask.Response:
    return json_response(settings, origin, error.status, error.body(), error.headers)


def respond_to_error(
    settings: Settings, origin: str | None, exc: Exception
) -> tuple[flask.Response, str]:
    """The answer to any exception an HTTP function raised, and its code for the log line.

    An ``ApiError`` is answered as itself; a Firestore outage is 503 ``unavailable``;
    anything else is a bug: its stack trace goes to the log, the client gets 500.
    """
    if isinstance(exc, ApiError):
        error = exc
    elif isinstance(exc, StoreUnavailable):
        error = Unavailable()
    else:
        log.error("unexpected error; answered 500", exc_info=exc)
        error = InternalError()
    return error_response(settings, origin, error), error.code
