"""Structured JSON log lines that Cloud Logging reads from stdout, one per request."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Mapping
from typing import Any

LOGGER_NAME = "diffio_progress"
TRACE_KEY = "logging.googleapis.com/trace"
SPAN_KEY = "logging.googleapis.com/spanId"

_CLOUD_TRACE = re.compile(r"^([0-9a-fA-F]{32})(?:/(\d{1,20}))?")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")

request_log = logging.getLogger(f"{LOGGER_NAME}.request")


class JsonFormatter(logging.Formatter):
    """One JSON object a line, with Cloud Logging's ``severity`` and ``message``.

    Fields passed as ``extra={"fields": {...}}`` are merged in at the top level.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            entry.update(fields)
        if record.exc_info:
            # Stack traces go to the log only, never into a response.
            entry["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure(level: int = logging.INFO) -> None:
    """Send the package's logs to stdout as JSON lines (idempotent)."""
    logger = logging.getLogger(LOGGER_NAME)
    if any(getattr(h, "_diffio_json", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    handler._diffio_json = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def trace_fields(headers: Any, project: str | None) -> dict[str, str]:
    """The trace and span ids from ``X-Cloud-Trace-Context`` or ``traceparent``."""
    trace_id = span_id = None
    cloud = _CLOUD_TRACE.match(headers.get("X-Cloud-Trace-Context") or "")
    parent = _TRACEPARENT.match((headers.get("traceparent") or "").strip().lower())
    if cloud:
        # This header's span id is decimal; Cloud Logging wants 16 hex digits.
        span = int(cloud.group(2)) if cloud.group(2) else None
        trace_id = cloud.group(1).lower()
        span_id = f"{span:016x}" if span is not None and 0 < span < 2**64 else None
    elif parent:
        trace_id, span_id = parent.group(1), parent.group(2)
    if trace_id is None:
        return {}
    fields = {TRACE_KEY: f"projects/{project}/traces/{trace_id}" if project else trace_id}
    if span_id:
        fields[SPAN_KEY] = span_id
    return fields


def log_request(
    *,
    method: str,
    path: str,
    status: int,
    latency_seconds: float,
    user_agent: str | None,
    remote_ip: str | None,
    trace: Mapping[str, str],
    context: Mapping[str, Any],
) -> None:
    """The one line per request. ``context`` holds generationId, keyId, userId, code.

    The URL is logged without its query string: a client that put its key
    there must not find it in our logs.
    """
    fields: dict[str, Any] = {
        "httpRequest": {
            "requestMethod": method,
            "requestUrl": path,
            "status": status,
            "latency": f"{latency_seconds:.6f}s",
            "userAgent": user_agent,
            "remoteIp": remote_ip,
        },
        **trace,
        **{k: v for k, v in context.items() if v is not None},
    }
    level = logging.ERROR if status >= 500 else logging.INFO
    request_log.log(level, "%s %s %d", method, path, status, extra={"fields": fields})


def log_exchange(
    request: Any, status: int, started: float, project: str | None, context: Mapping[str, Any]
) -> None:
    """``log_request`` for a served request: its method, path, headers and peer, timed from
    ``started`` (a ``time.perf_counter()`` reading)."""
    log_request(
        method=request.method,
        path=request.path,
        status=status,
        latency_seconds=time.perf_counter() - started,
        user_agent=request.headers.get("User-Agent"),
        remote_ip=request.remote_addr,
        trace=trace_fields(request.headers, project),
        context=context,
    )
