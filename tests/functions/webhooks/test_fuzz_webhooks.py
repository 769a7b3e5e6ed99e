"""Fuzzing the webhooks paths from openapi.yaml: never a 5xx, every answer as documented."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from schemathesis import GenerationMode

from tests.functions.events.receivers import Receiver
from tests.functions.test_fuzz import CHECKS, SCHEMA, run_fuzz
from tests.functions.webhooks.world import ALL_TYPES, make_key
from tests.project import ROOT
from tests.seed import MINTED_SECRETS, Seeder

CONFIGURE, TEST_EVENT = "/v1/webhooks/configure", "/v1/webhooks/send_test_event"
LOG_PATHS = [
    f"/v1/webhooks/{name}" for name in ("list_events", "list_attempts", "recover", "resend")
]
AUTH_HEADERS = {"authorization", "x-api-key", "xi-api-key"}


@pytest.fixture(scope="module")
def served_url(serve_function_for_module: Callable[..., str]) -> str:
    # Private URLs allowed, so configure resolves no generated host name; the tripwire in the
    # server proves that nothing (a test event to a generated URL, say) leaves loopback.
    site = os.pathsep.join([str(ROOT / "tests" / "tripwire_site"), str(ROOT)])
    return serve_function_for_module(
        target=None,
        WEBHOOK_SINK="direct",
        WEBHOOK_ALLOW_PRIVATE_URLS="true",
        KEY_RATE_LIMIT_PER_SECOND="0",
        REFUSED_KEYS_PER_ADDRESS_PER_MINUTE="0",
        PYTHONPATH=site,
    )


@pytest.fixture
def keys(seed: Seeder, served_url: str) -> Iterator[dict[str, str]]:
    """A key the configure fuzzing may rewrite, and one whose endpoint is a local receiver."""
    receiver = Receiver()
    configurer = make_key(seed, "key_fuzz_configure", webhooksWrite=True)
    tester = make_key(seed, "key_fuzz_test", webhooksWrite=True)
    answer = requests.post(
        f"{served_url}{CONFIGURE}",
        json={"mode": "live", "url": receiver.url, "eventTypes": ALL_TYPES},
        headers={"Authorization": f"Bearer {tester.key}"},
        timeout=10,
    ).json()
    MINTED_SECRETS.add(answer["webhook"]["signingSecret"])
    # The first test event imports the signing library: not inside a fuzz case's deadline.
    requests.post(
        f"{served_url}{TEST_EVENT}",
        json={"mode": "live", "eventType": "generation.queued"},
        headers={"Authorization": f"Bearer {tester.key}"},
        timeout=30,
    )
    yield {
        CONFIGURE: configurer.key,
        TEST_EVENT: tester.key,
        **dict.fromkeys(LOG_PATHS, tester.key),
    }
    receiver.stop()


def call(url: str, session: requests.Session, case: Any, key: str | None) -> int:
    if key is not None:
        case.headers = {k: v for k, v in case.headers.items() if k.lower() not in AUTH_HEADERS}
        case.headers["X-Api-Key"] = key
    response = case.call(base_url=url, session=session, timeout=15)
    case.validate_response(response, checks=CHECKS)
    body = response.json() if response.content else {}
    secret = (body.get("webhook") or {}).get("signingSecret") if isinstance(body, dict) else None
    if secret:
        MINTED_SECRETS.add(secret)
    return int(response.status_code)


@pytest.mark.parametrize("path", [CONFIGURE, TEST_EVENT])
def test_fuzzing_with_a_valid_key_conforms_and_never_fails(
    served_url: str, keys: dict[str, str], path: str
) -> None:
    post = SCHEMA[path]["POST"]
    with requests.Session() as session:
        statuses = run_fuzz(
            post.as_strategy(GenerationMode.POSITIVE),
            lambda case: call(served_url, session, case, keys[path]),
        )
        assert statuses[200] > 0, statuses
        assert set(statuses) <= {200, 400, 403, 404}, statuses
        negative = run_fuzz(
            post.as_strategy(GenerationMode.NEGATIVE),
            lambda case: call(served_url, session, case, keys[path]),
        )
    assert negative[400] > 0, negative
    assert set(negative) <= {200, 400, 403, 404}, negative


@pytest.mark.parametrize("path", LOG_PATHS)
def test_fuzzing_the_delivery_log_with_a_valid_key_conforms_and_never_fails(
    served_url: str, keys: dict[str, str], path: str
) -> None:
    post = SCHEMA[path]["POST"]
    strategy = post.as_strategy(GenerationMode.POSITIVE) | post.as_strategy(GenerationMode.NEGATIVE)
    with requests.Session() as session:
        statuses = run_fuzz(strategy, lambda case: call(served_url, session, case, keys[path]))
    assert statuses[400] > 0, statuses
    assert set(statuses) <= {200, 400, 403, 404, 409}, statuses


# The four log paths share one shell and one access check: list_events (every field optional,
# so most generated bodies reach the key) stands for them.
@pytest.mark.parametrize("path", [CONFIGURE, TEST_EVENT, LOG_PATHS[0]])
def test_fuzzing_with_generated_credentials_meets_401_or_400(served_url: str, path: str) -> None:
    post = SCHEMA[path]["POST"]
    strategy = post.as_strategy(GenerationMode.POSITIVE) | post.as_strategy(GenerationMode.NEGATIVE)
    with requests.Session() as session:
        statuses = run_fuzz(strategy, lambda case: call(served_url, session, case, None))
    assert statuses[401] > 0, statuses
    assert set(statuses) <= {400, 401}, statuses
