"""What a list_events page costs (one query, at most limit + 2 reads), and the indexes it needs."""

from __future__ import annotations

import itertools
import json
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
from diffio_progress.functions.secret_box import LocalKey, SecretBox
from diffio_progress.functions.webhooks.endpoint_store import EndpointStore, new_signing_secret
from diffio_progress.functions.webhooks.keys import KeyStore
from diffio_progress.functions.webhooks.log_handlers import ListEventsHandler
from diffio_progress.functions.webhooks.sinks import DirectWebhooks
from diffio_progress.functions.webhooks.wiring import build_direct_log
from tests.functions.webhooks.log_world import ago, seed_event
from tests.functions.webhooks.world import make_key
from tests.project import LOCAL_KEY, ROOT, TEST_PROJECT, WEBHOOK_DATABASE
from tests.seed import Seeder


def counted_list_events(counter: RpcCounter) -> flask.Flask:
    """``list_events`` whose ``webhooks`` database client counts every RPC (keys uncounted)."""
    webhooks = FirestoreConnection(
        5.0, lambda: CountingClient(counter, project=TEST_PROJECT, database=WEBHOOK_DATABASE)
    )
    sink = DirectWebhooks(
        EndpointStore(webhooks, SecretBox(LocalKey.from_base64(LOCAL_KEY))),
        PinnedPoster(allow_private=True),
        new_signing_secret,
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


def test_every_query_of_the_log_has_its_index_declared_for_the_webhooks_database() -> None:
    spec = json.loads((ROOT / "firestore.webhooks.indexes.json").read_text())
    declared = {
        (
            i["collectionGroup"],
            i["queryScope"],
            tuple((f["fieldPath"], f["order"]) for f in i["fields"]),
        )
        for i in spec["indexes"]
    }
    newest_first = (("createdAt", "DESCENDING"), ("__name__", "DESCENDING"))
    key = (("apiKeyId", "ASCENDING"), ("mode", "ASCENDING"))
    for chosen in itertools.product(
        [(), ("deliveryStatus",)], [(), ("eventType",)], [(), ("generationId",)]
    ):
        filters = tuple((name, "ASCENDING") for part in chosen for name in part)
        assert ("events", "COLLECTION_GROUP", key + filters + newest_first) in declared, chosen
    attempts = (("eventId", "ASCENDING"), ("at", "ASCENDING"))
    assert ("webhookAttempts", "COLLECTION", attempts) in declared
    by_id = [
        o
        for o in spec["fieldOverrides"]
        if (o["collectionGroup"], o["fieldPath"]) == ("events", "eventId")
    ]
    assert {"order": "ASCENDING", "queryScope": "COLLECTION_GROUP"} in by_id[0]["indexes"]
