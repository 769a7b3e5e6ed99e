"""Fixtures of the webhooks API tests: both entry points on the emulator, loopback only."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import functions_framework
import pytest
from google.cloud import firestore

from diffio_progress.functions.webhooks.wiring import reset_default_webhook_handlers
from tests import tripwire
from tests.functions.events.receivers import Receiver
from tests.functions.events.svix_standin import SvixStandIn
from tests.functions.webhooks.world import CONFIGURE, LOG_TARGETS, TEST_EVENT, Api
from tests.project import ROOT
from tests.seed import MINTED_SECRETS


@pytest.fixture(autouse=True)
def loopback_only() -> Iterator[None]:
    """The tripwire is armed in every webhooks test: nothing dials or resolves beyond loopback."""
    with tripwire.armed():
        yield


@pytest.fixture(scope="session")
def webhook_apps() -> dict[str, object]:
    """main.py's webhooks entry points, loaded by functions-framework."""
    return {
        target: functions_framework.create_app(target=target, source=str(ROOT / "main.py"))
        for target in (CONFIGURE, TEST_EVENT, *LOG_TARGETS)
    }


@pytest.fixture
def api(
    webhook_apps: dict[str, object], db: firestore.Client, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Api]:
    """Direct sink, private URLs allowed (local receivers): the local world's configuration."""
    monkeypatch.setenv("WEBHOOK_SINK", "direct")
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_URLS", "true")
    reset_default_webhook_handlers()
    yield Api({t: app.test_client() for t, app in webhook_apps.items()})  # type: ignore[attr-defined]
    reset_default_webhook_handlers()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver()
    yield started
    started.stop()


@pytest.fixture
def svix(api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[SvixStandIn]:
    """The svix sink against a fresh stand-in: live and test environments, one token each."""
    live, test = ("testsk_" + secrets.token_urlsafe(24) for _ in range(2))
    MINTED_SECRETS.update((live, test))
    standin = SvixStandIn(live, other_tokens=(test,))
    monkeypatch.setenv("WEBHOOK_SINK", "svix")
    monkeypatch.setenv("SVIX_API_TOKEN", live)
    monkeypatch.setenv("SVIX_TEST_API_TOKEN", test)
    monkeypatch.setenv("SVIX_SERVER_URL", standin.url)
    reset_default_webhook_handlers()
    yield standin
    standin.stop()
