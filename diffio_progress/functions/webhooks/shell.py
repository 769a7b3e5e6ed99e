"""What every webhooks function shares: the HTTP shell, configure's access checks, the clock.

Each function (configure, send_test_event, the delivery log's four) answers
inside ``http_shell.serve``, so method, body limit, JSON, CORS, admission and
outage answers are the progress function's, authorizes its caller with one
``WebhookAccess`` (webhooks-api.md §2), and bounds work the caller waits for with one
``SyncCalls`` (§6).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import flask

from ..admission import Admission
from ..clock import utcnow
from ..config import Settings
from ..http_shell import Call, serve
from .access import WebhookAccess
from .keys import KeyStore
from .sync_calls import SyncCalls


class WebhooksShell:
    """One webhooks function: ``answer`` turns a call that passed the shell into its body."""

    def __init__(
        self,
        settings: Settings,
        keys: KeyStore,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.access = WebhookAccess(keys, Admission(settings, monotonic), clock)
        # Calls that wait on a client's URL or DNS hold one of their key's few slots.
        self.sync = SyncCalls(
            settings.webhook_sync_per_key, settings.webhook_sync_deadline_seconds, monotonic
        )
        self.clock = clock

    def __call__(self, request: flask.Request) -> flask.Response:
        return serve(self.settings, request, self.answer)

    def answer(self, call: Call) -> dict[str, Any]:
        raise NotImplementedError
