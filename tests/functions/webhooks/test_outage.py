"""A Firestore outage during configure: 503 with Retry-After, in bounded time, nothing written."""

from __future__ import annotations

import os
import time

import flask
import pytest
from google.cloud import firestore

from diffio_progress.functions.config import Settings
from diffio_progress.functions.events.pinned_post import PinnedPoster
from diffio_progress.functions.firestore import FirestoreConnection
from diffio_progress.functions.secret_box import LocalKey, SecretBox
from diffio_progress.functions.webhooks.endpoint_store import EndpointStore, new_signing_secret
from diffio_progress.functions.webhooks.handlers import ConfigureHandler
from diffio_progress.functions.webhooks.keys import KeyStore
from diffio_progress.functions.webhooks.sinks import DirectWebhooks
from diffio_progress.tools import emulator
from tests.functions.webhooks.world import endpoint_docs, make_key
from tests.project import LOCAL_KEY, TEST_PROJECT
from tests.seed import Seeder


def unreachable_client() -> firestore.Client:
    """A client of an emulator address where nothing listens (the webhooks database is down)."""
    real = os.environ["FIRESTORE_EMULATOR_HOST"]
    os.environ["FIRESTORE_EMULATOR_HOST"] = f"127.0.0.1:{emulator.free_port()}"
    try:
        return firestore.Client(project=TEST_PROJECT, database="webhooks")
    finally:
        os.environ["FIRESTORE_EMULATOR_HOST"] = real


def test_an_unreachable_webhooks_database_is_a_bounded_503_and_nothing_is_stored(
    seed: Seeder, webhooks_db: firestore.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = make_key(seed, "key_writer", webhooksWrite=True)
    settings = Settings(
        project=TEST_PROJECT, webhook_sink="direct", webhook_allow_private_urls=True
    )
    box = SecretBox(LocalKey.from_base64(LOCAL_KEY))
    endpoints = EndpointStore(FirestoreConnection(1.0, client_factory=unreachable_client), box)
    sink = DirectWebhooks(endpoints, PinnedPoster(allow_private=True), new_signing_secret)
    resolver = PinnedPoster(resolve=lambda host, port: [host])  # a literal: nothing to look up
    keys = KeyStore(FirestoreConnection(5.0, project=TEST_PROJECT))
    handler = ConfigureHandler(settings, keys, sink, resolver)
    body = {"mode": "live", "url": "https://93.184.215.14/h", "eventTypes": ["generation.failed"]}
    started = time.monotonic()
    with flask.Flask("t").test_request_context(
        "/", method="POST", json=body, headers={"Authorization": f"Bearer {key.key}"}
    ):
        response = handler(flask.request)
    assert time.monotonic() - started < 10
    assert (response.status_code, response.get_json()["code"]) == (503, "unavailable")
    assert response.headers["Retry-After"] == "1"
    assert endpoint_docs(webhooks_db) == {}
