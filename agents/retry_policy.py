"""The one retry policy of engine requests: a TransientError is retried with exponential
backoff and full jitter, up to the engine's `max_retries`; any other error is final.

Pure: both execution paths (Celery's tracer and batch tasks) ask it, and it is tested alone.
"""

from __future__ import annotations

import random
from collections.abc import Callable

# The longest wait before a retry, whatever the attempt.
RETRY_BACKOFF_MAX_SECONDS = 60.0


def retry_countdown(
    retries: int, max_retries: int, jitter: Callable[[], float] = random.random
) -> float | None:
    """Seconds before attempt `retries + 2` (`retries` done so far), or None when none is left.

    Backoff 1, 2, 4 ... seconds capped at RETRY_BACKOFF_MAX_SECONDS, each scaled by a random
    fraction (full jitter) so that requests failing together do not come back together.
    """
    if retries >= max_retries:
        return None
    return round(jitter() * min(RETRY_BACKOFF_MAX_SECONDS, 2.0 ** max(retries, 0)), 3)
