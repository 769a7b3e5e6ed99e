"""openapi.yaml's ``webhooks`` describe what clients receive: real deliveries conform to them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from diffio_progress.core.events import EVENT_TYPES
from diffio_progress.functions.events.pinned_post import PinnedPoster
from tests.functions.events.harness import Harness, Writes
from tests.functions.events.receivers import Receiver

SPEC: dict[str, Any] = yaml.safe_load((Path(__file__).parents[3] / "openapi.yaml").read_text())
SPEC_URI = "urn:diffio:openapi"
# The whole document is one resource, so "#/components/..." references resolve inside it.
REGISTRY = Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(SPEC))


def validator(event_type: str) -> Draft202012Validator:
    """The JSON Schema (2020-12, as OpenAPI 3.1 uses) of the ``event_type`` webhook's body."""
    body = SPEC["webhooks"][event_type]["post"]["requestBody"]["content"]["application/json"]
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **body["schema"]}
    schema["$ref"] = SPEC_URI + schema["$ref"]
    return Draft202012Validator(schema, registry=REGISTRY, format_checker=FormatChecker())


def test_there_is_one_webhook_per_event_type() -> None:
    assert sorted(SPEC["webhooks"]) == sorted(EVENT_TYPES)
    for webhook in SPEC["webhooks"].values():
        headers = {p["$ref"].rsplit("/", 1)[-1] for p in webhook["post"]["parameters"]}
        assert headers == {"SvixId", "SvixTimestamp", "SvixSignature"}


def deliveries(harness: Harness, receiver: Receiver, writes: list[Any]) -> list[dict[str, Any]]:
    handler = harness.handler(
        PinnedPoster(allow_private=True), webhook_sink="direct", webhook_allow_private_urls=True
    )
    for write in writes:
        harness.send(handler, write())
    return [json.loads(r.body) for r in receiver.received]


def test_every_delivered_payload_conforms_to_its_webhook(
    writes: Writes, harness: Harness, receiver: Receiver
) -> None:
    harness.endpoint(receiver.url)
    payloads = deliveries(
        harness,
        receiver,
        [
            lambda: writes.generation(transcription={"status": "available"}),
            lambda: writes.job("preProcessing", "running"),
            lambda: writes.job("preProcessing", "complete", 100),
            lambda: writes.job("inference", "complete", 100),
        ],
    )
    failed = Writes(writes.db, writes.project_id, "gen-2")
    payloads += deliveries(
        harness,
        receiver,
        [
            lambda: failed.generation(modelKey=...),
            lambda: failed.job("inference", "failed", 10, errorDetails="OOM"),
        ],
    )[len(payloads) :]
    assert [p["eventType"] for p in payloads] == [
        "generation.queued",
        "generation.processing",
        "generation.completed",
        "generation.queued",
        "generation.failed",
    ]
    for payload in payloads:
        validator(payload["eventType"]).validate(payload)


@pytest.mark.parametrize(
    "change",
    [
        {"status": "complete"},  # not the queued event's status
        {"surprise": True},
        {"eventId": "evt_short"},
        {"createdAt": "2025-06-01 12:00"},
        {"error": "should be null"},
    ],
)
def test_the_schema_refuses_what_a_client_must_never_receive(change: dict[str, Any]) -> None:
    payload = {
        "eventType": "generation.queued",
        "eventId": "evt_" + "0" * 32,
        "createdAt": "2025-06-01T12:00:00.000Z",
        "apiKeyId": "key_1",
        "apiProjectId": "proj-1",
        "generationId": "gen-1",
        "status": "queued",
        "hasVideo": False,
        "modelKey": None,
        "error": None,
        "errorDetails": None,
    }
    validator("generation.queued").validate(payload)
    with pytest.raises(ValidationError):
        validator("generation.queued").validate({**payload, **change})
