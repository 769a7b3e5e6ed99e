"""`reap_stalled_jobs` over HTTP: a POST runs the reaper once and answers its summary as JSON."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import flask

from diffio_progress.core.errors import ApiError, StoreUnavailable

from . import logs
from .cloud_run import CloudRunLookup
from .config import Settings
from .reaper import Reaper
from .reaper_store import ReaperStore
from .responses import error_response, json_response

log = logging.getLogger(__name__)

_UNAVAILABLE = ApiError(
    503, "unavailable", "Service temporarily unavailable; retry shortly", {"Retry-After": "1"}
)


class ReaperHandler:
    """Answers Cloud Scheduler's calls (IAM has already checked its OIDC token)."""

    def __init__(self, settings: Settings, reaper: Reaper) -> None:
        self.settings = settings
        self.reaper = reaper

    def __call__(self, request: flask.Request) -> flask.Response:
        started = time.perf_counter()
        context: dict[str, Any] = {}
        response = self._respond(request, context)
        logs.log_request(
            method=request.method,
            path=request.path,
            status=response.status_code,
            latency_seconds=time.perf_counter() - started,
            user_agent=request.headers.get("User-Agent"),
            remote_ip=request.remote_addr,
            trace=logs.trace_fields(request.headers, self.settings.project),
            context=context,
        )
        return response

    def _respond(self, request: flask.Request, context: dict[str, Any]) -> flask.Response:
        try:
            if request.method != "POST":
                raise ApiError(
                    405, "method_not_allowed", "Method not allowed; use POST", {"Allow": "POST"}
                )
            summary = self.reaper().to_dict()
            context.update(summary)  # the request's log line carries the counts too
            return json_response(self.settings, None, 200, summary)
        except ApiError as error:
            context["code"] = error.code
            return error_response(self.settings, None, error)
        except StoreUnavailable:
            # Nothing half-done is lost: the cursor was not saved, the next call redoes the page.
            context["code"] = _UNAVAILABLE.code
            return error_response(self.settings, None, _UNAVAILABLE)
        except Exception:
            log.exception("unexpected error in the reaper")
            context["code"] = "internal_error"
            return error_response(
                self.settings, None, ApiError(500, "internal_error", "Internal error")
            )


def build_reaper_handler(
    settings: Settings, store: ReaperStore | None = None, lookup: CloudRunLookup | None = None
) -> ReaperHandler:
    """The handler as deployed; ``store`` and ``lookup`` replace the defaults (the benchmark)."""
    logs.configure()
    store = store or ReaperStore(settings.firestore_timeout, project=settings.project)
    # The reaper warns about a failed lookup itself, naming the job document.
    lookup = lookup or CloudRunLookup.from_settings(settings, warn=False)
    reaper = Reaper(
        store,
        lookup.in_order,
        min_age_seconds=settings.reaper_min_age_seconds,
        batch=settings.reaper_batch,
    )
    return ReaperHandler(settings, reaper)


_default: ReaperHandler | None = None
_default_lock = threading.Lock()


def default_reaper_handler(environ: Mapping[str, str] | None = None) -> ReaperHandler:
    """The process-wide handler, built on first use from the environment."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = build_reaper_handler(Settings.from_env(environ))
    return _default


def reset_default_reaper_handler() -> None:
    """Forget the process-wide handler (tests change the environment between cases)."""
    global _default
    with _default_lock:
        _default = None
