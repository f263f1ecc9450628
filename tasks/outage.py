"""The errors that mean a server could not be reached (or could not take a batch).

They are the only reason work goes back to the queue: any other error fails the one request
that caused it, with its reason (poison stays alone). Work sent back comes back redelivered,
runs alone and is counted, so even a batch that a healthy Redis refuses cannot go round forever
(TASK_MAX_DELIVERIES, tasks/pipeline/guards.py).
"""

from __future__ import annotations

import redis
from kombu.exceptions import BatchPublishError, OperationalError

UNREACHABLE: tuple[type[BaseException], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    OperationalError,
    OSError,
    # A batch's pipeline flush failed; kombu wraps the Redis error: delivery is uncertain.
    BatchPublishError,
)
