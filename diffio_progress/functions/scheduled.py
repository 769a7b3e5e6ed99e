"""The shell of a function Cloud Scheduler calls (the reaper, the relay): POST, JSON, 503.

IAM has already checked the scheduler's OIDC token. A POST runs the job once
and answers its counters as JSON; any other method is 405; an outage is 503
(what was left undone stays for the next call); one log line a call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import flask

from diffio_progress.core.errors import MethodNotAllowed

from . import logs
from .config import Settings
from .responses import json_response, respond_to_error


class ScheduledHandler:
    """Answers Cloud Scheduler's calls with ``run()``'s counters."""

    def __init__(self, settings: Settings, run: Callable[[], dict[str, Any]]) -> None:
        self.settings = settings
        self.run = run

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
            counts = self.run()
            return json_response(self.settings, None, 200, counts), dict(counts)
        except Exception as error:
            response, code = respond_to_error(self.settings, None, error)
            return response, {"code": code}
