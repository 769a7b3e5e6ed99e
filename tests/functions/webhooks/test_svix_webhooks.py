"""Both webhooks functions with the svix sink: the real ``svix`` library against the stand-in."""

from __future__ import annotations

from typing import Any

import pytest
from google.cloud import firestore

from tests.functions.events.svix_standin import SvixStandIn
from tests.functions.webhooks.world import ALL_TYPES, Api, Key, endpoint_docs, make_key
from tests.seed import MINTED_SECRETS, Seeder

URL = "https://hooks.example.com/diffio"


@pytest.fixture
def writer(seed: Seeder) -> Key:
    return make_key(seed, "key_writer", webhooksWrite=True)


def test_configure_creates_the_app_and_the_endpoint_per_mode_in_its_environment(
    api: Api, svix: SvixStandIn, writer: Key, webhooks_db: firestore.Client
) -> None:
    # The URL is public: the test's own resolver is not in play, so allow the name unresolved.
    body: dict[str, Any] = {"mode": "live", "url": URL, "eventTypes": ALL_TYPES}
    first = api.configure(writer, **body)
    assert first.status_code == 200, first.get_json()
    webhook = first.get_json()["webhook"]
    [endpoint] = svix.endpoints.values()
    assert webhook["endpointId"] == endpoint["id"] and webhook["svixEnv"] == "production"
    assert webhook["signingSecret"] == svix.secrets[endpoint["id"]][-1]
    assert (endpoint["uid"], endpoint["url"], endpoint["filterTypes"]) == ("live", URL, ALL_TYPES)
    assert list(svix.apps) == ["key_writer"]
    MINTED_SECRETS.update(svix.secrets[endpoint["id"]])

    again = api.configure(writer, **{**body, "eventTypes": ["generation.failed"]}).get_json()
    assert "signingSecret" not in again["webhook"]
    assert endpoint["filterTypes"] == ["generation.failed"] and len(svix.endpoints) == 1

    rotated = api.configure(writer, **{**body, "rotateSecret": True}).get_json()["webhook"]
    assert rotated["signingSecret"] == svix.secrets[endpoint["id"]][-1]
    assert len(svix.secrets[endpoint["id"]]) == 2
    MINTED_SECRETS.update(svix.secrets[endpoint["id"]])

    test_mode = api.configure(writer, **{**body, "mode": "test"}).get_json()["webhook"]
    assert test_mode["svixEnv"] == "test"
    test_env = svix.environments[next(t for t in svix.environments if t != svix.token)]
    assert [e["uid"] for e in test_env.endpoints.values()] == ["test"]
    MINTED_SECRETS.update(s for v in test_env.secrets.values() for s in v)
    assert endpoint_docs(webhooks_db) == {}  # Svix holds endpoints and secrets


def test_send_test_event_creates_one_message_in_the_modes_environment(
    api: Api, svix: SvixStandIn, writer: Key
) -> None:
    api.configure(writer, mode="live", url=URL, eventTypes=["generation.completed"])
    MINTED_SECRETS.update(s for v in svix.secrets.values() for s in v)
    missing = api.send_test(writer, eventType="generation.failed", mode="live")
    assert missing.get_json()["code"] == "webhook_not_configured"
    untested = api.send_test(writer, eventType="generation.completed", mode="test")
    assert untested.get_json()["code"] == "webhook_not_configured"
    sent = api.send_test(writer, eventType="generation.completed", mode="live")
    assert sent.status_code == 200, sent.get_json()
    answer = sent.get_json()
    [message] = svix.messages
    assert answer["svixMessageId"] == message["id"] and "delivery" not in answer
    assert message["eventId"] == answer["eventId"] == message["payload"]["eventId"]
    assert message["payload"]["status"] == "complete"


def test_a_svix_outage_during_configure_is_503_and_a_retry_converges(
    api: Api, svix: SvixStandIn, writer: Key
) -> None:
    body: dict[str, Any] = {"mode": "live", "url": URL, "eventTypes": ALL_TYPES}
    svix.fail_endpoints_with = 503
    down = api.configure(writer, **body)
    assert (down.status_code, down.get_json()["code"]) == (503, "unavailable")
    assert svix.endpoints == {}
    svix.fail_endpoints_with = None
    up = api.configure(writer, **body).get_json()["webhook"]
    MINTED_SECRETS.update(s for v in svix.secrets.values() for s in v)
    assert up["signingSecret"] and len(svix.endpoints) == 1
