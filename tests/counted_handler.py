"""The real handler on a Firestore client whose gRPC channel counts every RPC (test helper)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import flask

from diffio_progress.bench.rpc_count import BATCH_GET, RUN_QUERY, RpcCounter, client_factory, reads
from diffio_progress.functions.config import Settings
from diffio_progress.functions.firestore import FirestoreConnection
from diffio_progress.functions.progress.handler import ProgressHandler
from diffio_progress.functions.store import FirestoreStore
from tests.project import TEST_PROJECT

BATCH = f"calls.{BATCH_GET}"
QUERY = f"calls.{RUN_QUERY}"


@dataclass
class Poll:
    status: int
    body: dict[str, Any]
    counts: dict[str, int]
    requested: list[str]
    headers: dict[str, str]

    @property
    def reads(self) -> int:
        return reads(self.counts)


@dataclass
class Counted:
    counter: RpcCounter
    handler: ProgressHandler
    app: flask.Flask

    def poll(
        self,
        key: str,
        generation_id: str,
        project_id: str | None = None,
        headers: dict[str, str] | None = None,
        peer: str = "127.0.0.1",
    ) -> Poll:
        """One poll through the handler's HTTP boundary, with the RPCs it cost.

        ``peer`` is the socket's remote address (the last proxy's, when there is one).
        """
        body: dict[str, str] = {"generationId": generation_id}
        if project_id is not None:
            body["apiProjectId"] = project_id
        self.counter.reset()
        response = self.app.test_client().post(
            "/",
            json=body,
            headers={"X-Api-Key": key, **(headers or {})},
            environ_base={"REMOTE_ADDR": peer},
        )
        counts = self.counter.snapshot()
        requested = self.counter.requested_documents()
        return Poll(
            response.status_code, response.get_json(), counts, requested, dict(response.headers)
        )


def counted_handler(
    settings: Settings,
    store_class: type[FirestoreStore] = FirestoreStore,
    monotonic: Callable[[], float] = time.monotonic,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Counted:
    counter = RpcCounter(record_documents=True)
    store = store_class(FirestoreConnection(5.0, client_factory(counter, TEST_PROJECT)))
    handler = ProgressHandler(settings, store, clock=clock, monotonic=monotonic)
    app = flask.Flask("counted")
    app.add_url_rule("/", view_func=lambda: handler(flask.request), methods=["POST"])
    return Counted(counter, handler, app)
