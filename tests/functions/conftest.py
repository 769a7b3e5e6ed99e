"""Fixtures for the deployed functions' tests."""

from __future__ import annotations

import pytest

from tests.clocks import Clock


@pytest.fixture
def clock() -> Clock:
    """A monotonic clock that moves only when the test moves it."""
    return Clock()
