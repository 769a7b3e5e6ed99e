"""POST /v1/webhooks/send_test_event through main.py's entry point, direct sink, local receivers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from diffio import DiffioClient
from google.cloud import firestore

from diffio_progress.functions.webhooks.wiring import reset_default_webhook_handlers
from tests.functions.events.receivers import Receiver
from tests.functions.webhooks.world import ALL_TYPES, Api, Key, endpoint_docs, make_key
from tests.seed import Seeder


@pytest.fixture
def writer(seed: Seeder) -> Key:
    return make_key(seed, "key_writer", webhooksWrite=True)


def verify(received: Any, secret: str) -> Any:
    """The official SDK's verification of one received request (raises if it fails)."""
    client = DiffioClient(apiKey="unused", baseUrl="http://127.0.0.1:9/v1")
    return client.webhooks.verify_signature(
        payload=received.body.decode(), headers=received.headers, secret=secret
    )


def configure(api: Api, key: Key, url: str, mode: str = "live", **body: Any) -> str:
    answer = api.configure(key, mode=mode, url=url, eventTypes=ALL_TYPES, **body).get_json()
    return str(answer["webhook"].get("signingSecret"))


def test_a_test_event_is_signed_delivered_and_verifies_with_the_returned_secret(
    api: Api, writer: Key, receiver: Receiver, db: firestore.Client
) -> None:
    secret = configure(api, writer, receiver.url)
    response = api.send_test(writer, eventType="generation.failed", mode="live")
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert answer["svixMessageId"].startswith("msg_") and answer["eventId"].startswith("evt_")
    assert (answer["eventType"], answer["mode"], answer["apiKeyId"]) == (
        "generation.failed",
        "live",
        "key_writer",
    )
    assert answer["delivery"] == {"status": "delivered", "httpStatus": 204, "error": None}
    [received] = receiver.received
    event = verify(received, secret)
    assert (event.eventId, event.status, event.apiKeyId) == (
        answer["eventId"],
        "error",
        "key_writer",
    )
    assert event.generationId.startswith("gen_test_") and event.apiProjectId.startswith(
        "proj_test_"
    )
    assert event.error and event.errorDetails
    assert received.headers["svix-id"] == answer["eventId"]
    # Nothing went into any generation's outbox.
    assert list(db.collection_group("events").get()) == []


@pytest.mark.parametrize(
    ("event_type", "status"),
    [
        ("generation.queued", "queued"),
        ("generation.processing", "processing"),
        ("generation.completed", "complete"),
    ],
)
def test_each_type_carries_its_status_and_the_sample_is_merged_over_it(
    api: Api, writer: Key, receiver: Receiver, event_type: str, status: str
) -> None:
    configure(api, writer, receiver.url)
    sample = {"generationId": "gen-mine", "hasVideo": True, "modelKey": None, "error": None}
    api.send_test(writer, eventType=event_type, mode="live", samplePayload=sample)
    payload = json.loads(receiver.received[0].body)
    assert (payload["eventType"], payload["status"]) == (event_type, status)
    assert {k: payload[k] for k in sample} == sample
    assert payload["error"] is None and payload["errorDetails"] is None


def test_during_a_rotation_each_delivery_verifies_with_either_secret(
    api: Api, writer: Key, receiver: Receiver
) -> None:
    old = configure(api, writer, receiver.url)
    new = configure(api, writer, receiver.url, rotateSecret=True)
    api.send_test(writer, eventType="generation.completed", mode="live")
    [received] = receiver.received
    assert len(received.headers["svix-signature"].split(" ")) == 2
    verify(received, old)
    verify(received, new)


def test_test_and_live_endpoints_are_separate(
    api: Api, writer: Key, receiver: Receiver, seed: Seeder
) -> None:
    live = Receiver()
    try:
        configure(api, writer, receiver.url, mode="test")
        configure(api, writer, live.url, mode="live")
        api.send_test(writer, eventType="generation.completed", mode="test")
        assert len(receiver.received) == 1 and live.received == []
    finally:
        live.stop()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"mode": "live"}, "invalid_event_type"),
        ({"eventType": "generation.started", "mode": "live"}, "invalid_event_type"),
        ({"eventType": "generation.completed", "mode": "Live"}, "invalid_mode"),
        (
            {"eventType": "generation.completed", "mode": "live", "apiKeyId": ""},
            "invalid_api_key_id",
        ),
        (
            {"eventType": "generation.completed", "mode": "live", "samplePayload": []},
            "invalid_sample_payload",
        ),
        (
            {"eventType": "generation.completed", "mode": "live", "samplePayload": None},
            "invalid_sample_payload",
        ),
        (
            {"eventType": "generation.completed", "mode": "live", "samplePayload": {"status": "x"}},
            "invalid_sample_payload",
        ),
        (
            {"eventType": "generation.completed", "mode": "live", "samplePayload": {"hasVideo": 1}},
            "invalid_sample_payload",
        ),
        (
            {
                "eventType": "generation.completed",
                "mode": "live",
                "samplePayload": {"generationId": None},
            },
            "invalid_sample_payload",
        ),
        (
            {"eventType": "generation.completed", "mode": "live", "samplePayload": {"error": 3}},
            "invalid_sample_payload",
        ),
    ],
)
def test_each_invalid_body_gets_its_code(
    api: Api, writer: Key, body: dict[str, Any], code: str
) -> None:
    response = api.post("webhooks_send_test_event", writer, body)
    assert (response.status_code, response.get_json()["code"]) == (400, code)


def test_no_endpoint_for_the_pair_or_the_type_is_404(
    api: Api, writer: Key, receiver: Receiver
) -> None:
    none = api.send_test(writer, eventType="generation.completed", mode="live")
    assert (none.status_code, none.get_json()["code"]) == (404, "webhook_not_configured")
    api.configure(writer, mode="live", url=receiver.url, eventTypes=["generation.failed"])
    other = api.send_test(writer, eventType="generation.completed", mode="live")
    assert other.get_json()["code"] == "webhook_not_configured"
    wrong_mode = api.send_test(writer, eventType="generation.failed", mode="test")
    assert wrong_mode.get_json()["code"] == "webhook_not_configured"
    assert receiver.received == []


@pytest.mark.parametrize(
    ("behaviour", "http_status"), [("status:500", 500), ("redirect", 307), ("close", None)]
)
def test_a_failed_delivery_is_still_a_200_that_says_how_it_failed(
    api: Api, writer: Key, behaviour: str, http_status: int | None
) -> None:
    failing = Receiver(behaviour)
    try:
        configure(api, writer, failing.url)
        response = api.send_test(writer, eventType="generation.completed", mode="live")
    finally:
        failing.stop()
    assert response.status_code == 200
    delivery = response.get_json()["delivery"]
    assert (delivery["status"], delivery["httpStatus"]) == ("failed", http_status)
    assert delivery["error"]


def test_the_permission_rules_are_configures(
    api: Api, writer: Key, seed: Seeder, receiver: Receiver, webhooks_db: firestore.Client
) -> None:
    configure(api, writer, receiver.url)
    reader = make_key(seed, "key_reader")
    refused = api.send_test(reader, eventType="generation.completed", mode="live")
    assert refused.get_json()["code"] == "permission_denied"
    other = api.send_test(
        writer, eventType="generation.completed", mode="live", apiKeyId="key_reader"
    )
    assert other.get_json()["code"] == "forbidden"
    assert receiver.received == [] and len(endpoint_docs(webhooks_db)) == 1


def test_a_leftover_http_endpoint_gets_no_signed_clear_text_test_event(
    api: Api,
    writer: Key,
    receiver: Receiver,
    webhooks_db: firestore.Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configure(api, writer, receiver.url)  # http://127.0.0.1: allowed while private URLs are
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_URLS", "false")
    reset_default_webhook_handlers()
    answer = api.send_test(writer, eventType="generation.completed", mode="live").get_json()
    assert answer["delivery"] == {
        "status": "failed",
        "httpStatus": None,
        "error": "url scheme http is not allowed; use https",
    }
    assert receiver.received == []


def test_a_non_ascii_endpoint_url_is_sent_to_in_ascii(
    api: Api, writer: Key, receiver: Receiver, webhooks_db: firestore.Client
) -> None:
    configure(api, writer, receiver.url + "/ä?q=ü")
    response = api.send_test(writer, eventType="generation.completed", mode="live")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["delivery"]["status"] == "delivered"
    assert [r.path for r in receiver.received] == ["/hooks/diffio/%C3%A4?q=%C3%BC"]
