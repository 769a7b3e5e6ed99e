"""The retry schedule, pure: ``WEBHOOK_RETRY_SCHEDULE`` parsed, ``Retry-After`` read, next due.

delivery-contract.md §2: after failed attempt number *n*, the next is due no
earlier than the schedule's *n*-th entry after it; *k* entries allow *k* + 1
attempts. A ``Retry-After`` (seconds or an HTTP date) on a 429 or 503 pushes
the next attempt later, capped at 24 hours, and never adds one.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

DEFAULT_SCHEDULE = "5s,5m,30m,2h,5h,10h,10h,12h,12h,12h"
RETRY_AFTER_CAP = timedelta(hours=24)
RETRY_AFTER_STATUSES = frozenset({429, 503})
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_ENTRY = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")

Schedule = tuple[timedelta, ...]


def parse_schedule(text: str) -> Schedule:
    """``5s,5m,2h`` as durations; ``ValueError`` naming the entry that is not one.

    ``ms`` is accepted too, so that tests and benchmarks can compress time.
    An empty schedule allows one attempt only.
    """
    entries = [e.strip() for e in text.split(",") if e.strip()]
    schedule = []
    for entry in entries:
        match = _ENTRY.fullmatch(entry)
        if match is None:
            raise ValueError(f"{entry!r} is not a duration such as 5s, 5m or 2h")
        schedule.append(timedelta(seconds=float(match[1]) * _UNITS[match[2]]))
    return tuple(schedule)


def scaled(schedule: Schedule, factor: float) -> Schedule:
    """The schedule with every entry divided by ``factor`` (a compressed clock)."""
    return tuple(entry / factor for entry in schedule)


def max_attempts(schedule: Schedule) -> int:
    return len(schedule) + 1


def retry_after(status: int | None, header: str | None, now: datetime) -> datetime | None:
    """When a 429 or 503's ``Retry-After`` allows the next attempt, capped at 24 h; else None."""
    if status not in RETRY_AFTER_STATUSES or not header:
        return None
    text = header.strip()
    if text.isdigit():
        at = now + timedelta(seconds=int(text))
    else:
        try:
            at = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
    return min(at, now + RETRY_AFTER_CAP)


def next_attempt_at(
    schedule: Schedule, attempts: int, now: datetime, not_before: datetime | None = None
) -> datetime | None:
    """When the attempt after ``attempts`` failed ones is due; None when the schedule ran out."""
    if attempts < 1 or attempts > len(schedule):
        return None
    due = now + schedule[attempts - 1]
    return max(due, not_before) if not_before is not None else due
