"""The official SDK (diffio 0.3.10), unchanged, against the three paths behind one address."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from diffio import DiffioApiError, DiffioClient

from tests.functions.events.receivers import Receiver
from tests.functions.webhooks.world import ALL_TYPES, make_key
from tests.seed import MINTED_SECRETS, Seeder


@pytest.fixture(scope="module")
def base_url(serve_function_for_module: Callable[..., str]) -> str:
    """The routing table served as the local world serves it: direct sink, local receivers."""
    url = serve_function_for_module(
        target=None, WEBHOOK_SINK="direct", WEBHOOK_ALLOW_PRIVATE_URLS="true"
    )
    return f"{url}/v1"


@pytest.fixture
def sdk(seed: Seeder, base_url: str) -> Iterator[DiffioClient]:
    key = make_key(seed, "key_sdk", webhooksWrite=True)
    seed.project("proj-1")
    seed.generation("proj-1", "gen-1")
    with DiffioClient(apiKey=key.key, baseUrl=base_url) as client:
        yield client


def test_configure_and_send_test_event_work_and_the_delivery_verifies(
    sdk: DiffioClient, receiver: Receiver
) -> None:
    configured = sdk.webhooks.configure(mode="live", url=receiver.url, eventTypes=ALL_TYPES)
    webhook = configured.webhook
    secret = webhook["signingSecret"]
    MINTED_SECRETS.add(secret)
    assert (webhook["apiKeyId"], webhook["mode"], webhook["url"]) == (
        "key_sdk",
        "live",
        receiver.url,
    )
    sent = sdk.webhooks.send_test_event(eventType="generation.completed", mode="live")
    assert sent.svixMessageId.startswith("msg_") and sent.apiKeyId == "key_sdk"
    [received] = receiver.received
    event = sdk.webhooks.verify_signature(
        payload=received.body.decode(), headers=received.headers, secret=secret
    )
    assert (event.eventId, event.eventType) == (sent.eventId, "generation.completed")
    # The progress function answers on its own path behind the same address.
    assert sdk.get_generation_progress(generationId="gen-1").status == "pending"


def test_errors_are_diffio_api_errors_with_the_contracts_codes(
    sdk: DiffioClient, base_url: str
) -> None:
    with pytest.raises(DiffioApiError) as error:
        sdk.webhooks.send_test_event(eventType="generation.completed", mode="test")
    assert error.value.statusCode == 404
    unknown = httpx.post(f"{base_url}/webhooks/nope", json={})
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")
