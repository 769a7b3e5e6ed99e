"""Endpoint health: 410 disables at once, failing for the limit disables, a success heals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from diffio_progress.core.endpoint_health import change, enabled, is_disabled

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LIMIT = timedelta(hours=120)
GONE = {"disabled": True, "disabledReason": "gone", "disabledAt": NOW, "failingSince": None}
FAILING = {**GONE, "disabledReason": "failing"}


@pytest.mark.parametrize(
    ("document", "ok", "status", "changed"),
    [
        ({}, True, 204, None),  # healthy stays healthy: nothing written
        ({"failingSince": NOW - LIMIT}, True, 204, {"failingSince": None}),
        ({}, False, 500, {"failingSince": NOW}),
        ({"failingSince": NOW - timedelta(hours=1)}, False, 500, None),
        ({"failingSince": NOW - LIMIT}, False, None, FAILING),
        ({}, False, 410, GONE),
        ({"disabled": True}, False, 410, None),  # already disabled: no second transition
        ({"disabled": "yes"}, False, 500, None),  # fails closed
    ],
)
def test_transitions(
    document: dict[str, Any], ok: bool, status: int | None, changed: dict[str, Any] | None
) -> None:
    assert change(document, ok, status, NOW, LIMIT) == changed


def test_configure_enables_and_forgets_the_failures() -> None:
    assert not is_disabled(enabled()) and is_disabled({"disabled": True})
    assert not is_disabled({})
