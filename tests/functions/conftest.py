"""Fixtures for the deployed functions' tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from diffio_progress.tools import emulator
from tests.clocks import Clock


@pytest.fixture
def clock() -> Clock:
    """A monotonic clock that moves only when the test moves it."""
    return Clock()


@pytest.fixture
def own_emulator() -> Iterator[emulator.FirestoreEmulator]:
    """An emulator this test may stop, freeze, kill and restart; never the session's one."""
    process = emulator.FirestoreEmulator(port=emulator.free_port())
    yield process
    process.close()
