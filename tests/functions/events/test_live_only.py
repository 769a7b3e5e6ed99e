"""A generation's events go to the live endpoints in the webhooks database, and nowhere else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from diffio import DiffioClient

from diffio_progress.core.endpoints import ENDPOINTS
from diffio_progress.core.events import QUEUED_EVENT
from tests.functions.events.harness import KEY_ID, Harness, Writes, new_secret
from tests.functions.events.test_direct_delivery import direct


def test_only_live_endpoints_receive_generation_events_and_missing_mode_is_live(
    writes: Writes, harness: Harness, receivers: Any
) -> None:
    live, legacy, test = receivers(), receivers(), receivers()
    harness.endpoint(live.url, mode="live")
    harness.endpoint(legacy.url)  # from before modes existed
    harness.endpoint(test.url, mode="test")
    outcome = harness.send(direct(harness), writes.generation())
    assert outcome.fields["delivered"] == [QUEUED_EVENT]
    assert (len(live.received), len(legacy.received), len(test.received)) == (1, 1, 0)


def test_endpoints_left_in_the_default_database_are_ignored(
    writes: Writes, harness: Harness, receiver: Any
) -> None:
    harness.db.document(ENDPOINTS, "ep_old").set(
        {"apiKeyId": KEY_ID, "url": receiver.url, "secret": new_secret()}
    )
    harness.send(direct(harness), writes.generation())
    assert receiver.received == []


def test_during_a_rotation_events_verify_with_either_secret_and_after_it_only_the_new(
    writes: Writes, harness: Harness, receiver: Any
) -> None:
    old, new = new_secret(), new_secret()
    soon = datetime.now(UTC) + timedelta(hours=1)
    endpoint_id, _ = harness.endpoint(
        receiver.url, secret=new, previousSecret=old, previousSecretExpiresAt=soon
    )
    harness.send(direct(harness), writes.generation())
    sdk = DiffioClient(apiKey="unused", baseUrl="http://127.0.0.1:9/v1").webhooks
    [first] = receiver.received
    for secret in (old, new):
        sdk.verify_signature(payload=first.body.decode(), headers=first.headers, secret=secret)
    past = datetime.now(UTC) - timedelta(seconds=1)
    harness.webhooks_db.document(ENDPOINTS, endpoint_id).update({"previousSecretExpiresAt": past})
    harness.send(direct(harness), writes.job("preProcessing", "running"))
    second = receiver.received[-1]
    assert len(second.headers["svix-signature"].split(" ")) == 1
    sdk.verify_signature(payload=second.body.decode(), headers=second.headers, secret=new)
