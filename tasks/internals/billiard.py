"""Private parts of billiard and the prefork pool (batch tasks, pool watch). Checked with billiard 4.3.2."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from billiard import pool as billiard_pool
from billiard.einfo import ExceptionWithTraceback
from billiard.pool import SIG_SOFT_TIMEOUT, Pool
from celery.concurrency.asynpool import AsynPool
from celery.concurrency.base import BasePool

from tasks.internals import PrivatePart

CHECKED_WITH = "billiard 4.3.2"


def unwrap(exc: BaseException) -> BaseException:
    """The exception a pool process raised, without billiard's traceback wrapper."""
    return exc.exc if isinstance(exc, ExceptionWithTraceback) else exc


@contextmanager
def soft_limit_held() -> Iterator[list[bool]]:
    """Keep the soft time limit's signal from raising inside the block; the list says if it came.

    The parent sends it (SIGUSR1) about once a second after the deadline, so it can land after the
    handlers finished, inside the hooks that record their outcomes: raised there, it would cut a
    hook short (a breaker sample lost) while the request is recorded as a success. The hard time
    limit still bounds the block. Where billiard's soft-limit handler is not installed (the
    worker's main process, where SIGUSR1 dumps tracebacks; other threads) it does nothing."""
    fired: list[bool] = []
    if (
        SIG_SOFT_TIMEOUT is None
        or threading.current_thread() is not threading.main_thread()
        or signal.getsignal(SIG_SOFT_TIMEOUT) is not billiard_pool.soft_timeout_sighandler
    ):
        yield fired
        return
    previous = signal.signal(SIG_SOFT_TIMEOUT, lambda _signum, _frame: fired.append(True))
    try:
        yield fired
    finally:
        signal.signal(SIG_SOFT_TIMEOUT, previous)


PARTS = [
    PrivatePart(
        billiard_pool,
        "soft_timeout_sighandler",
        ("signum", "frame"),
        "its presence as the SIGUSR1 handler tells a pool process whose soft limit is armed",
    ),
    PrivatePart(ExceptionWithTraceback, "exc", "instance", "errors of a batch come back wrapped"),
    PrivatePart(
        Pool,
        "apply_async",
        (
            "self",
            "func",
            "args",
            "kwds",
            "callback",
            "error_callback",
            "accept_callback",
            "timeout_callback",
            "waitforslot",
            "soft_timeout",
            "timeout",
            "lost_worker_timeout",
            "callbacks_propagate",
            "correlation_id",
        ),
        "a batch runs as one pool call with its own callbacks and the task's time limits",
    ),
    PrivatePart(
        AsynPool,
        "_event_process_exit",
        ("self", "hub", "proc"),
        "run when a pool process's sentinel is readable; tasks/pool_watch.py re-checks after it",
    ),
    PrivatePart(
        Pool,
        "_join_exited_workers",
        ("self", "shutdown"),
        "what maintain_pool runs to find exited processes and fail their jobs as WorkerLostError",
    ),
    PrivatePart(Pool, "_pool", "instance", "the pool's processes; a dead one stays listed until reaped"),
    PrivatePart(
        BasePool,
        "apply_async",
        ("self", "target", "args", "kwargs", "options"),
        "Celery's pool wrapper passes a batch's callbacks and time limits on to billiard",
    ),
]
