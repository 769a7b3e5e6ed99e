"""The shell: validate, admit, read (coalesced), respond; and log one line per request."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import flask

from diffio_progress.core.errors import ApiError, KeyRefused
from diffio_progress.core.progress import LiveLookup
from diffio_progress.core.request import ProgressQuery, parse_body

from ..admission import Admission
from ..clock import utcnow
from ..config import Settings
from ..http_shell import Call, Exchange, admitted_key, serve
from ..store import FirestoreStore
from .coalescing import Coalescer
from .reads import PollRead, ProgressReader


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
        return serve(self.settings, request, self._answer)

    def _answer(self, call: Call) -> dict[str, Any]:
        query = parse_body(call.raw)
        call.exchange.log_fields["generationId"] = query.generation_id
        return self.progress(query, call.headers, call.exchange, call.address)

    # -- the request, after parsing ---------------------------------------

    def progress(
        self,
        query: ProgressQuery,
        headers: Any,
        exchange: Exchange | None = None,
        address: str | None = None,
    ) -> dict[str, Any]:
        """Admit the caller, then read; identical polls in flight share one read."""
        exchange = exchange or Exchange()
        key_hash, admitted = admitted_key(self.admission, headers, address, exchange)
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
