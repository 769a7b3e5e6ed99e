"""Token-bucket arithmetic (token_bucket.py): burst, refill, and the seconds a client is told."""

from __future__ import annotations

import pytest

from diffio_progress.core.token_bucket import Bucket, give_back, take


def drain(n: int, now: float = 0.0, rate: float = 20, burst: float = 40) -> Bucket | None:
    bucket = None
    for _ in range(n):
        decision = take(bucket, now, rate, burst)
        assert decision.allowed
        bucket = decision.bucket
    return bucket


def test_a_new_caller_may_spend_the_whole_burst_at_once_and_no_more() -> None:
    bucket = drain(40)
    refused = take(bucket, 0.0, 20, 40)
    assert not refused.allowed
    assert refused.remaining == 0
    assert refused.retry_after == 1  # one token comes back in 50 ms: wait the whole second


def test_tokens_come_back_at_the_rate() -> None:
    bucket = drain(40)
    assert not take(bucket, 0.04, 20, 40).allowed  # 0.8 tokens
    later = take(bucket, 0.05, 20, 40)  # 1 token
    assert later.allowed and later.remaining == 0


def test_the_bucket_never_holds_more_than_the_burst() -> None:
    bucket = drain(1)
    after_an_hour = take(bucket, 3600.0, 20, 40)
    assert after_an_hour.remaining == 39
    assert after_an_hour.reset == 1  # one token short of full: 50 ms, told as a whole second


@pytest.mark.parametrize(("rate", "retry_after"), [(20, 1), (1, 1), (0.5, 2), (0.1, 10)])
def test_retry_after_is_whole_seconds_until_one_token_and_at_least_one(
    rate: float, retry_after: int
) -> None:
    bucket = drain(1, rate=rate, burst=1)
    refused = take(bucket, 0.0, rate, 1)
    assert not refused.allowed and refused.retry_after == retry_after


def test_a_steady_caller_under_the_rate_is_never_refused() -> None:
    bucket = None
    for i in range(1000):  # one poll every 2 s: the official SDK's default interval
        decision = take(bucket, i * 2.0, 20, 40)
        assert decision.allowed
        bucket = decision.bucket


def test_an_older_timestamp_from_another_thread_refills_nothing() -> None:
    bucket = drain(40, now=10.0)
    refused = take(bucket, 9.0, 20, 40)
    assert not refused.allowed and refused.bucket.at == 10.0


def test_reset_says_when_the_bucket_is_full_again() -> None:
    bucket = drain(40)
    assert take(bucket, 0.0, 20, 40).reset == 2  # 40 tokens at 20/s


def test_a_token_given_back_can_be_spent_again() -> None:
    bucket = drain(2, rate=1, burst=2)
    assert not take(bucket, 0.0, 1, 2).allowed
    returned = give_back(bucket, 0.0, 1, 2)
    assert returned == Bucket(1.0, 0.0)
    assert take(returned, 0.0, 1, 2).allowed


def test_giving_back_never_fills_past_the_burst() -> None:
    bucket = drain(1, rate=1, burst=2)
    assert give_back(bucket, 5.0, 1, 2) == Bucket(2.0, 5.0)  # refilled meanwhile
    assert give_back(None, 0.0, 1, 2) is None  # forgotten: a new caller's bucket is full
