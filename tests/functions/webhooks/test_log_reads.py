"""What a list_events page costs, counted on the wire: one query, at most limit + 2 reads."""

from __future__ import annotations

from typing import Any

import flask
from google.cloud import firestore

from diffio_progress.bench.rpc_count import (
    BATCH_GET,
    RUN_QUERY,
    CountingClient,
    RpcCounter,
    reads,
)
from diffio_progress.functions.config import Settings
from diffio_progress.functions.events.pinned_post import PinnedPoster
from diffio_progress.functions.firestore import FirestoreConnection
from diffio_progress.functions.webhooks.endpoint_store import EndpointStore, new_signing_secret
from diffio_progress.functions.webhooks.keys import KeyStore
from diffio_progress.functions.webhooks.log_handlers import ListEventsHandler
from diffio_progress.functions.webhooks.sinks import DirectWebhooks
from diffio_progress.functions.webhooks.wiring import build_direct_log
from tests.functions.webhooks.log_world import ago, seed_event
from tests.functions.webhooks.world import make_key
from tests.project import TEST_PROJECT, WEBHOOK_DATABASE
from tests.seed import Seeder


def counted_list_events(counter: RpcCounter) -> flask.Flask:
    """``list_events`` whose ``webhooks`` database client counts every RPC (keys uncounted)."""
    webhooks = FirestoreConnection(
        5.0, lambda: CountingClient(counter, project=TEST_PROJECT, database=WEBHOOK_DATABASE)
    )
    sink = DirectWebhooks(
        EndpointStore(webhooks), PinnedPoster(allow_private=True), new_signing_secret
    )
    settings = Settings(project=TEST_PROJECT, webhook_sink="direct")
    log = build_direct_log(settings, sink)
    handler = ListEventsHandler(
        settings, KeyStore(FirestoreConnection(5.0, project=TEST_PROJECT)), log
    )
    app = flask.Flask("counted-log")
    app.add_url_rule("/", view_func=lambda: handler(flask.request), methods=["POST"])
    return app


def test_a_page_is_one_query_and_at_most_limit_plus_two_billed_reads(
    seed: Seeder, webhooks_db: firestore.Client
) -> None:
    writer = make_key(seed, "key_writer", webhooksWrite=True)
    for i in range(60):
        seed_event(webhooks_db, "key_writer", f"g{i}", created=ago(minutes=i))
    counter = RpcCounter()
    client = counted_list_events(counter).test_client()

    def page(**body: Any) -> tuple[dict[str, Any], dict[str, int]]:
        counter.reset()
        answer = client.post("/", json=body, headers={"X-Api-Key": writer.key})
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json(), counter.snapshot()

    first, counts = page(limit=50)
    assert len(first["events"]) == 50 and first["nextCursor"]
    assert counts[f"calls.{RUN_QUERY}"] == 1 and counts[f"calls.{BATCH_GET}"] == 1
    assert reads(counts) == 52  # 50 and the one that says more follow; the endpoint's lookup
    last, counts = page(limit=50, cursor=first["nextCursor"])
    assert len(last["events"]) == 10 and last["nextCursor"] is None
    assert counts[f"calls.{RUN_QUERY}"] == 1 and reads(counts) == 11
