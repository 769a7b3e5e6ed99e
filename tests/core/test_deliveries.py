"""Deliveries: the transitions of one (event, endpoint) delivery, due times, rank order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from diffio_progress.core.deliveries import (
    DELIVERED,
    FAILED,
    PENDING,
    SKIPPED,
    Attempt,
    Delivery,
    after_attempt,
    all_delivered,
    attempt_trigger,
    delivery_summary,
    due_at,
    outcome_of,
    pair_endpoint_id,
    plan,
    read_delivery,
    scheduled,
    skipped,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
S = timedelta(seconds=1)
SCHEDULE = (5 * S, 60 * S)


@pytest.mark.parametrize(
    ("attempts", "attempt", "status", "next_at", "outcome"),
    [
        (0, Attempt(True, 204), DELIVERED, None, "delivered"),
        (0, Attempt(False, 500), PENDING, NOW + 5 * S, "retried"),
        (1, Attempt(False, None), PENDING, NOW + 60 * S, "retried"),
        (2, Attempt(False, 500), FAILED, None, "failed"),  # k entries: k + 1 attempts
        (0, Attempt(False, 410), FAILED, None, "failed"),  # gone: at once
        (0, Attempt(False, 503, NOW + 3600 * S), PENDING, NOW + 3600 * S, "retried"),
        (2, Attempt(False, 503, NOW + 3600 * S), FAILED, None, "failed"),
    ],
)
def test_after_an_attempt(
    attempts: int, attempt: Attempt, status: str, next_at: datetime | None, outcome: str
) -> None:
    before = Delivery(PENDING, attempts, next_attempt_at=NOW)
    after = after_attempt(before, attempt, NOW, SCHEDULE)
    assert (after.status, after.next_attempt_at, outcome_of(after)) == (status, next_at, outcome)
    assert (after.attempts, after.last_attempt_at, after.last_http_status) == (
        attempts + 1,
        NOW,
        attempt.http_status,
    )


def test_the_map_round_trips_and_only_pending_has_a_next_attempt() -> None:
    pending = after_attempt(scheduled(NOW), Attempt(False, 500), NOW, SCHEDULE)
    assert read_delivery(pending.to_map()) == pending
    assert pending.trigger == "relay" and scheduled(NOW).trigger == "event"
    assert "nextAttemptAt" not in skipped().to_map()
    assert read_delivery({"status": "lost"}) is None and read_delivery("x") is None


def test_due_at_is_the_earliest_pending_and_none_without_one() -> None:
    later = Delivery(PENDING, next_attempt_at=NOW + S)
    assert due_at([later, scheduled(NOW), Delivery(DELIVERED)]) == NOW
    assert due_at([Delivery(DELIVERED), skipped()]) is None
    assert all_delivered({"a": Delivery(DELIVERED)}) and not all_delivered({})
    assert not all_delivered({"a": Delivery(DELIVERED), "b": skipped()})


def test_the_summary_is_the_configured_endpoints_delivery() -> None:
    mine = pair_endpoint_id("key_1", "live")
    assert mine.startswith("ep_") and mine != pair_endpoint_id("key_1", "test")
    assert delivery_summary(
        {mine: Delivery(FAILED), "ep_other": scheduled(NOW)}, "key_1", "live"
    ) == (
        mine,
        FAILED,
    )
    assert delivery_summary({"ep_other": scheduled(NOW)}, "key_1", "live") == (None, SKIPPED)
    assert delivery_summary({"svix": scheduled(NOW)}, "key_1", "live") == (None, PENDING)
    assert delivery_summary({}, None, "live") == (None, SKIPPED)


def test_an_endpoint_waits_for_every_lower_pending_delivery_to_it() -> None:
    mine = {"a": scheduled(NOW), "b": scheduled(NOW), "c": scheduled(NOW)}
    lower = [
        {"a": Delivery(PENDING, 1, next_attempt_at=NOW + 5 * S)},  # retried later: a waits
        {"b": Delivery(FAILED), "c": Delivery(PENDING, next_attempt_at=NOW)},  # c: due now
    ]
    targets, put_off = plan(mine, lower, NOW)
    assert targets == ["b"]
    assert put_off == {"a": Delivery(PENDING, next_attempt_at=NOW + 5 * S)}
    assert plan({"a": Delivery(PENDING, next_attempt_at=NOW + S)}, [], NOW) == ([], {})


def test_a_recovered_delivery_keeps_its_trigger() -> None:
    assert attempt_trigger(Delivery(PENDING, trigger="recover"), "relay") == "recover"
    assert attempt_trigger(scheduled(NOW), "relay") == "relay"
