"""A write that loses to contention tries again after a pause, within its patience."""

from __future__ import annotations

import pytest

from diffio_progress.worker.contention import EXHAUSTED, LONGEST_PAUSE, with_patience


class Loser:
    """Loses ``times`` times to contention, as the client library reports it, then writes."""

    def __init__(self, times: int, error: str = f"{EXHAUSTED} in 20 attempts.") -> None:
        self.times, self.error, self.calls = times, error, 0

    def __call__(self) -> bool:
        self.calls += 1
        if self.calls <= self.times:
            raise ValueError(self.error)
        return True


class Clock:
    def __init__(self) -> None:
        self.now, self.pauses = 0.0, []  # type: ignore[var-annotated]

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


def test_a_write_that_lost_to_contention_is_tried_again_after_growing_pauses() -> None:
    clock, write = Clock(), Loser(times=4)
    assert with_patience(write, 60, clock.sleep, lambda: clock.now) is True
    assert write.calls == 5
    assert all(b > a for a, b in zip(clock.pauses, clock.pauses[1:], strict=False))
    assert max(clock.pauses) <= 2 * LONGEST_PAUSE


def test_patience_runs_out_and_the_contention_error_is_raised() -> None:
    clock, write = Clock(), Loser(times=1000)
    with pytest.raises(ValueError, match=EXHAUSTED):
        with_patience(write, 10, clock.sleep, lambda: clock.now)
    assert clock.now <= 10
    assert 5 < write.calls < 1000


def test_no_patience_raises_at_the_first_loss() -> None:
    clock, write = Clock(), Loser(times=1)
    with pytest.raises(ValueError, match=EXHAUSTED):
        with_patience(write, 0, clock.sleep, lambda: clock.now)
    assert write.calls == 1 and clock.pauses == []


def test_any_other_error_is_raised_at_once() -> None:
    clock, write = Clock(), Loser(times=1, error="stage must be one of preProcessing, ...")
    with pytest.raises(ValueError, match="stage must be"):
        with_patience(write, 60, clock.sleep, lambda: clock.now)
    assert write.calls == 1
