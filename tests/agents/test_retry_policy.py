"""The one retry policy: exponential backoff with full jitter, bounded, then no more retries."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agents.retry_policy import RETRY_BACKOFF_MAX_SECONDS, retry_countdown


def test_backoff_doubles_until_the_cap_without_jitter() -> None:
    full = [retry_countdown(n, 100, jitter=lambda: 1.0) for n in range(8)]
    assert full == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def test_no_retry_once_max_retries_are_used() -> None:
    assert retry_countdown(3, 3) is None
    assert retry_countdown(0, 0) is None


@given(st.integers(min_value=0, max_value=50), st.floats(min_value=0, max_value=1))
def test_countdown_stays_within_zero_and_the_cap(retries: int, fraction: float) -> None:
    countdown = retry_countdown(retries, 51, jitter=lambda: fraction)
    assert countdown is not None and 0 <= countdown <= RETRY_BACKOFF_MAX_SECONDS
