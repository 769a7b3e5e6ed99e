"""The deployed handler on a Firestore client that counts its RPCs: the benchmark's function.

Identical to ``main.get_generation_progress`` except for the counting gRPC
interceptor on the client's channel, and a GET of ``COUNTS_PATH`` answering
the process's totals. The floor carries the same interceptor.
"""

from __future__ import annotations

import threading

import flask

from diffio_progress.functions.config import Settings
from diffio_progress.functions.firestore import FirestoreConnection
from diffio_progress.functions.progress.handler import ProgressHandler
from diffio_progress.functions.progress.wiring import build_handler
from diffio_progress.functions.store import FirestoreStore

from .rpc_count import COUNTS_PATH, RpcCounter, client_factory, counts_body

COUNTER = RpcCounter()
_handler: ProgressHandler | None = None
_lock = threading.Lock()


def _progress_handler() -> ProgressHandler:
    global _handler
    if _handler is None:
        with _lock:
            if _handler is None:
                settings = Settings.from_env()
                counted = client_factory(COUNTER, settings.project)
                _handler = build_handler(
                    settings,
                    FirestoreStore(FirestoreConnection(settings.firestore_timeout, counted)),
                )
    return _handler


def get_generation_progress(request: flask.Request) -> flask.Response:
    if request.path == COUNTS_PATH and request.method == "GET":
        return flask.Response(counts_body(COUNTER), mimetype="application/json")
    return _progress_handler()(request)
