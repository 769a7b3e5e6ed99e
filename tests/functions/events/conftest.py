"""Fixtures of the event tests: real writes on the emulator as Eventarc's CloudEvents, a counted
handler, local receivers and a Svix stand-in, all behind the loopback tripwire."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator

import pytest
from google.cloud import firestore

from diffio_progress.bench.rpc_count import RpcCounter
from diffio_progress.functions import logs
from tests import tripwire
from tests.functions.events.harness import PROJECT_ID, Harness, Writes
from tests.functions.events.receivers import Receiver
from tests.functions.events.svix_standin import SvixStandIn
from tests.log_records import Records, kept
from tests.seed import MINTED_SECRETS, Seeder


@pytest.fixture(autouse=True)
def loopback_only() -> Iterator[None]:
    """Every event test runs with the tripwire armed; any dial beyond loopback fails it."""
    with tripwire.armed():
        yield


@pytest.fixture
def writes(db: firestore.Client, seed: Seeder) -> Writes:
    seed.project(PROJECT_ID, "user-1", has_video=False)
    return Writes(db)


@pytest.fixture
def harness(db: firestore.Client, webhooks_db: firestore.Client) -> Iterator[Harness]:
    built = Harness(db, webhooks_db, RpcCounter(record_documents=True))
    yield built
    for handler in built.built:
        handler.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver()
    yield started
    started.stop()


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(behaviour: str = "ok") -> Receiver:
        started.append(Receiver(behaviour))
        return started[-1]

    yield start
    for r in started:
        r.stop()


@pytest.fixture
def svix() -> Iterator[SvixStandIn]:
    token = "testsk_" + secrets.token_urlsafe(24)
    MINTED_SECRETS.add(token)
    standin = SvixStandIn(token)
    yield standin
    standin.stop()


@pytest.fixture
def event_logs() -> Iterator[Records]:
    """Every record the package logs during the test, as it would be shipped."""
    logs.configure()
    with kept(Records(logging.DEBUG), logs.LOGGER_NAME) as handler:
        yield handler
