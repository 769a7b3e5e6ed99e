"""What one caller can cost (admission.py): per-key limits, remembered refusals, address budget."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from diffio import DiffioClient
from google.cloud import firestore

from diffio_progress.functions.config import Settings
from diffio_progress.worker.stage_writer import StageWriter
from tests.clocks import Clock
from tests.counted_handler import Counted, counted_handler
from tests.project import TEST_PROJECT
from tests.seed import Seeder, new_key


def handler(clock: Clock, **settings: float) -> Counted:
    return counted_handler(Settings(project=TEST_PROJECT, **settings), monotonic=clock)  # type: ignore[arg-type]


def test_a_key_over_its_limit_gets_429_with_retry_after_and_no_read(
    seed: Seeder, db: firestore.Client, clock: Clock
) -> None:
    key = seed.world()
    counted = handler(clock)  # the defaults: 20 a second, bursts of 40
    for _ in range(40):
        assert counted.poll(key, "gen-1", "proj-1").status == 200
    refused = counted.poll(key, "gen-1", "proj-1")
    assert refused.status == 429
    assert refused.body == {
        "error": "Too many requests for this API key; retry later",
        "code": "rate_limited",
    }
    assert refused.counts == {}  # no Firestore read at all
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["RateLimit-Policy"] == '"key";q=40;w=2'
    assert refused.headers["RateLimit"] == '"key";r=0;t=1'

    clock.seconds += 0.051  # one token back at 20 a second (50 ms)
    assert counted.poll(key, "gen-1", "proj-1").status == 200
    assert counted.poll(key, "gen-1", "proj-1").status == 429


def test_the_limit_is_per_key(seed: Seeder, db: firestore.Client, clock: Clock) -> None:
    busy = seed.world()
    calm = seed.api_key("user-1")
    counted = handler(clock, key_rate_limit_per_second=1, key_rate_limit_burst=2)
    assert [counted.poll(busy, "gen-1").status for _ in range(3)] == [200, 200, 429]
    assert counted.poll(calm, "gen-1").status == 200


def test_every_admitted_answer_tells_the_quota_left(
    seed: Seeder, db: firestore.Client, clock: Clock
) -> None:
    key = seed.world()
    counted = handler(clock, key_rate_limit_per_second=2, key_rate_limit_burst=5)
    headers = [counted.poll(key, "gen-1").headers for _ in range(3)]
    assert {h["RateLimit-Policy"] for h in headers} == {'"key";q=5;w=3'}
    remaining = [int(re.findall(r"r=(\d+)", h["RateLimit"])[0]) for h in headers]
    assert remaining == [4, 3, 2]


@pytest.mark.parametrize(
    "settings", [{"key_rate_limit_per_second": 0}, {"key_rate_limit_per_second": 0.0}]
)
def test_zero_turns_the_key_limit_off(
    seed: Seeder, db: firestore.Client, clock: Clock, settings: dict[str, float]
) -> None:
    key = seed.world()
    counted = handler(clock, **settings)
    polls = [counted.poll(key, "gen-1") for _ in range(60)]
    assert {p.status for p in polls} == {200}
    assert all("RateLimit" not in p.headers for p in polls)


def test_a_refused_key_is_refused_from_memory_for_a_while(
    seed: Seeder, db: firestore.Client, clock: Clock
) -> None:
    seed.world()
    revoked = seed.api_key("user-1", status="revoked")
    unknown = new_key()
    counted = handler(clock)
    for key, code in ((unknown, "api_key_invalid"), (revoked, "api_key_inactive")):
        first = counted.poll(key, "gen-1", "proj-1")
        assert first.body["code"] == code and first.reads > 0
        again = counted.poll(key, "gen-1", "proj-1")
        assert again.body == first.body and again.status == first.status
        assert again.counts == {}
    clock.seconds += Settings().refused_key_cache_seconds
    assert counted.poll(unknown, "gen-1", "proj-1").reads > 0


def test_without_the_refusal_memory_every_refused_poll_reads(
    seed: Seeder, db: firestore.Client, clock: Clock
) -> None:
    unknown = new_key()
    counted = handler(clock, refused_key_cache_seconds=0)
    assert all(counted.poll(unknown, "gen-1").reads > 0 for _ in range(3))


def test_an_address_sending_made_up_keys_is_stopped_without_reads(
    seed: Seeder, db: firestore.Client, clock: Clock
) -> None:
    good = seed.world()
    counted = handler(clock, refused_keys_per_address_per_minute=3)
    attacker = {"X-Forwarded-For": "203.0.113.9"}
    assert counted.poll(good, "gen-1", headers=attacker).status == 200  # known to work now
    statuses = [counted.poll(new_key(), "gen-1", headers=attacker).status for _ in range(3)]
    assert statuses == [401, 401, 401]

    stopped = counted.poll(new_key(), "gen-1", headers=attacker)
    assert stopped.status == 429 and stopped.counts == {}
    assert stopped.headers["RateLimit-Policy"] == '"refused-keys";q=3;w=60'
    assert int(stopped.headers["Retry-After"]) == 20  # one lookup back every 20 s

    # A key that works is never held back by its address; other addresses are not affected.
    assert counted.poll(good, "gen-1", headers=attacker).status == 200
    elsewhere = {"X-Forwarded-For": "198.51.100.7"}
    assert counted.poll(new_key(), "gen-1", headers=elsewhere).status == 401

    clock.seconds += 20
    assert counted.poll(new_key(), "gen-1", headers=attacker).status == 401


def test_a_spoofed_forwarded_for_entry_does_not_escape_the_address_budget(
    seed: Seeder, db: firestore.Client, clock: Clock
) -> None:
    counted = handler(clock, refused_keys_per_address_per_minute=1)
    spoofed = {"X-Forwarded-For": "10.0.0.1, 203.0.113.9"}
    assert counted.poll(new_key(), "gen-1", headers=spoofed).status == 401
    spoofed = {"X-Forwarded-For": "10.0.0.2, 203.0.113.9"}
    assert counted.poll(new_key(), "gen-1", headers=spoofed).status == 429


def test_the_sdk_waiting_at_its_default_interval_never_meets_the_limit(
    seed: Seeder, serve_function: Callable[..., str], server_log_dir: Path
) -> None:
    """wait_for_generation polls every 2 s; the SDK would retry a 429 silently, so the
    served function's own log lines are the proof that none was answered."""
    key = seed.world()
    url = serve_function()  # the default limits: 20 a second, bursts of 40
    writer = StageWriter(seed.db, "proj-1", "gen-1", "inference")
    seed.job("proj-1", "gen-1", "preProcessing", status="complete")
    writer.start()
    finish = threading.Timer(5.0, writer.complete)
    finish.start()
    try:
        with DiffioClient(apiKey=key, baseUrl=f"{url}/v1") as client:
            result = client.wait_for_generation(generationId="gen-1", timeout=60)
    finally:
        finish.cancel()
    assert result.status == "complete"
    port = urlsplit(url).port
    lines = [
        json.loads(line)
        for line in (server_log_dir / f"{port}.log").read_text().splitlines()
        if line.startswith("{")
    ]
    polls = [line["httpRequest"] for line in lines if "httpRequest" in line]
    statuses = [poll["status"] for poll in polls if poll["requestMethod"] == "POST"]
    assert len(statuses) >= 3 and set(statuses) == {200}, statuses
