"""The benchmark's floor: one batched read (get_all) of a poll's documents, returned as JSON.

No validation, composition, caching or logging: the least any implementation
of the contract must do for a poll, behind the same framework. The caller
says whether the project has video, so the floor reads exactly the needed
job documents. Served by ``python -m diffio_progress.bench`` as target
``floor``; it counts its RPCs like the function does.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import flask
from google.cloud import firestore

from diffio_progress.core import paths
from diffio_progress.core.auth import hash_api_key, header_bytes
from diffio_progress.core.request import extract_api_key
from diffio_progress.core.stages import stage_names

from .rpc_count import COUNTS_PATH, CountingClient, RpcCounter, counts_body

COUNTER = RpcCounter()
_client: firestore.Client | None = None
_lock = threading.Lock()


def _firestore() -> firestore.Client:
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                _client = CountingClient(COUNTER, project=os.environ.get("GOOGLE_CLOUD_PROJECT"))
    return _client


def floor_paths(body: dict[str, Any], api_key: str) -> list[paths.DocPath]:
    """Key, project, generation and the needed job documents of one poll.

    ``withoutKey`` leaves the key document out: what an API-key cache could save.
    """
    project_id, generation_id = body["apiProjectId"], body["generationId"]
    wanted = [paths.project(project_id), paths.generation(project_id, generation_id)]
    wanted += [paths.job(project_id, generation_id, s) for s in stage_names(body["hasVideo"])]
    if body.get("withoutKey"):
        return wanted
    return [paths.api_key(hash_api_key(header_bytes(api_key))), *wanted]


def floor(request: flask.Request) -> flask.Response:
    if request.path == COUNTS_PATH:
        return flask.Response(counts_body(COUNTER), mimetype="application/json")
    body = json.loads(request.get_data())
    client = _firestore()
    refs = [client.document(*p) for p in floor_paths(body, extract_api_key(request.headers) or "")]
    docs = {s.reference.path: s.to_dict() for s in client.get_all(refs, timeout=5.0)}
    return flask.Response(json.dumps(docs, default=str), mimetype="application/json")
