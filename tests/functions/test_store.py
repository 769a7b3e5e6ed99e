"""FirestoreStore under outage: every failure is StoreUnavailable (a 503), never a crash."""

from __future__ import annotations

import pytest

from diffio_progress.core import paths
from diffio_progress.core.errors import StoreUnavailable
from diffio_progress.functions.store import FirestoreStore
from diffio_progress.tools import emulator


@pytest.fixture
def unreachable(monkeypatch: pytest.MonkeyPatch) -> FirestoreStore:
    """A store whose emulator address has nothing listening."""
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{emulator.free_port()}")
    return FirestoreStore(0.5, project="diffio-progress-store")


def test_an_unreachable_firestore_is_unavailable_and_the_client_is_replaced(
    unreachable: FirestoreStore,
) -> None:
    first = unreachable.client
    with pytest.raises(StoreUnavailable):
        unreachable.get_documents([paths.api_key("k")])
    assert unreachable.client is not first


def test_a_call_racing_a_reconnect_is_unavailable_not_a_crash(
    unreachable: FirestoreStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A thread takes the client, then another thread's failure closes its channel.
    stale = unreachable.client
    with pytest.raises(StoreUnavailable):
        unreachable.get_documents([paths.api_key("k")])
    monkeypatch.setattr(FirestoreStore, "client", property(lambda self: stale))
    with pytest.raises(StoreUnavailable):
        unreachable.find_generations("gen-1")
    with pytest.raises(StoreUnavailable):
        unreachable.get_documents([paths.api_key("k")])
