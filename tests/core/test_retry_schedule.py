"""The retry schedule: WEBHOOK_RETRY_SCHEDULE parsed, Retry-After read, the next attempt's time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from diffio_progress.core.retry_schedule import (
    DEFAULT_SCHEDULE,
    max_attempts,
    next_attempt_at,
    parse_schedule,
    retry_after,
    scaled,
)

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
S, M, H = timedelta(seconds=1), timedelta(minutes=1), timedelta(hours=1)


def test_the_default_is_svix_then_on_to_about_64_hours() -> None:
    schedule = parse_schedule(DEFAULT_SCHEDULE)
    assert schedule == (5 * S, 5 * M, 30 * M, 2 * H, 5 * H, 10 * H, 10 * H, 12 * H, 12 * H, 12 * H)
    assert max_attempts(schedule) == 11
    assert timedelta(hours=63) < sum(schedule, timedelta()) < timedelta(hours=65)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("1s", (S,)),
        (" 2m , 1h ", (2 * M, H)),
        ("1.5h", (90 * M,)),
        ("10ms,1ms", (timedelta(milliseconds=10), timedelta(milliseconds=1))),
        ("", ()),
    ],
)
def test_durations_parse(text: str, parsed: tuple[timedelta, ...]) -> None:
    assert parse_schedule(text) == parsed


@pytest.mark.parametrize("text", ["5", "5d", "-1s", "1s,,x", "s5", "1 h"])
def test_a_bad_entry_is_named(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_schedule(text)


def test_scaled_compresses_time() -> None:
    assert scaled((10 * S, H), 10_000) == (timedelta(milliseconds=1), timedelta(seconds=0.36))


@pytest.mark.parametrize(
    ("attempts", "due"),
    [(0, None), (1, NOW + 5 * S), (2, NOW + 5 * M), (3, NOW + 30 * M), (4, None)],
)
def test_after_failed_attempt_n_the_nth_entry_then_nothing(
    attempts: int, due: datetime | None
) -> None:
    assert next_attempt_at((5 * S, 5 * M, 30 * M), attempts, NOW) == due


def test_not_before_only_delays_and_never_adds_an_attempt() -> None:
    schedule = (5 * S,)
    assert next_attempt_at(schedule, 1, NOW, NOW + H) == NOW + H
    assert next_attempt_at(schedule, 1, NOW, NOW + S) == NOW + 5 * S
    assert next_attempt_at(schedule, 2, NOW, NOW + H) is None


@pytest.mark.parametrize(
    ("status", "header", "at"),
    [
        (429, "120", NOW + 2 * M),
        (503, "Thu, 01 Jan 2026 13:00:00 GMT", NOW + H),
        (503, "999999", NOW + 24 * H),  # capped at 24 h
        (503, "Sat, 03 Jan 2026 12:00:00 GMT", NOW + 24 * H),
        (500, "120", None),  # only on 429 and 503
        (503, None, None),
        (503, "soon", None),
        (None, "120", None),
    ],
)
def test_retry_after(status: int | None, header: str | None, at: datetime | None) -> None:
    assert retry_after(status, header, NOW) == at
