"""The optional API-key cache (API_KEY_CACHE_TTL_SECONDS): saved reads, revocation within TTL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.cloud import firestore

from diffio_progress.functions.config import Settings
from tests.counted_handler import BATCH, QUERY, Counted, counted_handler
from tests.project import TEST_PROJECT
from tests.seed import Seeder, key_hash

TTL = 10.0
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


class FakeClock:
    """Both clocks the handler reads: monotonic seconds and the wall time."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def monotonic(self) -> float:
        return self.seconds

    def wall(self) -> datetime:
        return NOW + timedelta(seconds=self.seconds - 1000.0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _cached(ttl: float, clock: FakeClock) -> Counted:
    settings = Settings(project=TEST_PROJECT, api_key_cache_ttl=ttl)
    return counted_handler(settings, monotonic=clock.monotonic, clock=clock.wall)


def _revoke(db: firestore.Client, key: str) -> None:
    db.document("apiKeys", key_hash(key)).update({"status": "revoked"})


def test_a_cached_key_is_left_out_of_later_batches(
    seed: Seeder, db: firestore.Client, clock: FakeClock
) -> None:
    key = seed.world("proj-a", "gen-a")
    counted = _cached(TTL, clock)
    key_doc = f"apiKeys/{key_hash(key)}"

    first = counted.poll(key, "gen-a", "proj-a")
    assert first.status == 200 and key_doc in first.requested

    clock.seconds += 1
    later = counted.poll(key, "gen-a", "proj-a")
    assert later.status == 200 and later.body == first.body
    assert key_doc not in later.requested
    # Key, project, generation and two audio jobs, less the key.
    assert later.counts[BATCH] == 1 and later.reads == 4


def test_revocation_takes_effect_within_the_ttl_even_for_a_key_in_constant_use(
    seed: Seeder, db: firestore.Client, clock: FakeClock
) -> None:
    key = seed.world("proj-a", "gen-a")
    counted = _cached(TTL, clock)
    assert counted.poll(key, "gen-a", "proj-a").status == 200
    _revoke(db, key)

    # Polled every second: using the cached document must not extend its life.
    refused_at = None
    for second in range(1, 15):
        clock.seconds += 1
        poll = counted.poll(key, "gen-a", "proj-a")
        if poll.status == 403:
            assert poll.body["code"] == "api_key_inactive"
            refused_at = second
            break
        assert poll.status == 200
    assert refused_at is not None and refused_at <= TTL


def test_with_ttl_zero_every_poll_reads_the_key_and_revocation_is_immediate(
    seed: Seeder, db: firestore.Client, clock: FakeClock
) -> None:
    key = seed.world("proj-a", "gen-a")
    counted = _cached(0, clock)
    for _ in range(2):
        poll = counted.poll(key, "gen-a", "proj-a")
        assert poll.status == 200 and f"apiKeys/{key_hash(key)}" in poll.requested
    _revoke(db, key)
    assert counted.poll(key, "gen-a", "proj-a").status == 403


def test_expiry_is_checked_on_every_poll_even_while_cached(
    seed: Seeder, db: firestore.Client, clock: FakeClock
) -> None:
    key = seed.world("proj-a", "gen-a")
    db.document("apiKeys", key_hash(key)).update({"expiresAt": NOW + timedelta(seconds=3)})
    counted = _cached(TTL, clock)
    assert counted.poll(key, "gen-a", "proj-a").status == 200

    clock.seconds += 3
    poll = counted.poll(key, "gen-a", "proj-a")
    assert (poll.status, poll.body["code"]) == (403, "api_key_expired")
    assert f"apiKeys/{key_hash(key)}" not in poll.requested


def test_an_unknown_key_is_never_cached_as_usable(
    seed: Seeder, db: firestore.Client, clock: FakeClock
) -> None:
    seed.project("proj-a", "user-1")
    seed.generation("proj-a", "gen-a", "user-1")
    counted = _cached(TTL, clock)
    key = "diffio_test_minted_a_moment_later"
    assert counted.poll(key, "gen-a", "proj-a").status == 401

    # A key presented before it existed stays refused from memory for
    # REFUSED_KEY_CACHE_SECONDS (tests/functions/test_admission.py), then works.
    seed.api_key("user-1", key=key)
    clock.seconds += Settings().refused_key_cache_seconds
    assert counted.poll(key, "gen-a", "proj-a").status == 200


def test_without_project_id_a_cached_key_is_not_read_beside_the_query(
    seed: Seeder, clock: FakeClock
) -> None:
    key = seed.world("proj-a", "gen-a")
    seed.project("proj-b", "user-1")
    seed.generation("proj-b", "gen-b", "user-1")
    counted = _cached(TTL, clock)
    assert counted.poll(key, "gen-a", "proj-a").status == 200

    first = counted.poll(key, "gen-b")
    assert first.status == 200 and first.body["apiProjectId"] == "proj-b"
    assert first.counts[QUERY] == 1 and first.counts[BATCH] == 1
    assert f"apiKeys/{key_hash(key)}" not in first.requested


def test_the_environment_variable_turns_the_cache_on(
    seed: Seeder, db: firestore.Client, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_KEY_CACHE_TTL_SECONDS", "30")
    key = seed.world("proj-a", "gen-a")

    def poll() -> int:
        body = {"generationId": "gen-a", "apiProjectId": "proj-a"}
        response = client.post("/v1/get_generation_progress", json=body, headers={"X-Api-Key": key})
        return int(response.status_code)

    assert poll() == 200
    _revoke(db, key)
    # Inside the 30 s window the cached document still answers.
    assert poll() == 200


@pytest.mark.parametrize(("raw", "ttl"), [("", 0.0), ("0", 0.0), ("2.5", 2.5), ("30", 30.0)])
def test_the_ttl_is_off_by_default_and_configurable_up_to_30_seconds(raw: str, ttl: float) -> None:
    assert Settings.from_env({"API_KEY_CACHE_TTL_SECONDS": raw}).api_key_cache_ttl == ttl


@pytest.mark.parametrize("raw", ["31", "inf", "-1", "a minute"])
def test_a_ttl_beyond_30_seconds_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="API_KEY_CACHE_TTL_SECONDS"):
        Settings.from_env({"API_KEY_CACHE_TTL_SECONDS": raw})
