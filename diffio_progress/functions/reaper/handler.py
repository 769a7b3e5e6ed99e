"""`reap_stalled_jobs` over HTTP: a POST runs the reaper once and answers its summary as JSON."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import flask

from diffio_progress.core.errors import MethodNotAllowed

from .. import logs
from ..config import Settings
from ..firestore import FirestoreConnection
from ..once_per_process import OncePerProcess
from ..responses import json_response, respond_to_error
from .lookups import ReaperLookup
from .store import ReaperStore
from .sweep import Reaper


class ReaperHandler:
    """Answers Cloud Scheduler's calls (IAM has already checked its OIDC token)."""

    def __init__(self, settings: Settings, reaper: Reaper) -> None:
        self.settings = settings
        self.reaper = reaper

    def __call__(self, request: flask.Request) -> flask.Response:
        started = time.perf_counter()
        response, log_fields = self._respond(request)
        logs.log_exchange(request, response.status_code, started, self.settings.project, log_fields)
        return response

    def _respond(self, request: flask.Request) -> tuple[flask.Response, dict[str, Any]]:
        """The answer, and the fields of the request's log line (the counts, or the code)."""
        try:
            if request.method != "POST":
                raise MethodNotAllowed(["POST"])
            summary = self.reaper().to_dict()
            return json_response(self.settings, None, 200, summary), dict(summary)
        except Exception as error:
            # An outage loses nothing half-done: the cursor was not saved, the next
            # call redoes the page.
            response, code = respond_to_error(self.settings, None, error)
            return response, {"code": code}


def build_reaper_handler(
    settings: Settings, store: ReaperStore | None = None, lookup: ReaperLookup | None = None
) -> ReaperHandler:
    """The handler as deployed; ``store`` and ``lookup`` replace the defaults (the benchmark)."""
    logs.configure()
    store = store or ReaperStore(FirestoreConnection.from_settings(settings))
    lookup = lookup or ReaperLookup.from_settings(settings)
    reaper = Reaper(
        store,
        lookup,
        min_age_seconds=settings.reaper_min_age_seconds,
        batch=settings.reaper_batch,
    )
    return ReaperHandler(settings, reaper)


_default: OncePerProcess[ReaperHandler] = OncePerProcess(build_reaper_handler)


def default_reaper_handler(environ: Mapping[str, str] | None = None) -> ReaperHandler:
    """The process-wide handler, built on first use from the environment."""
    return _default.get(environ)


def reset_default_reaper_handler() -> None:
    """Forget the process-wide handler (tests change the environment between cases)."""
    _default.reset()
