"""Private parts of billiard and the prefork pool (batch tasks, pool watch). Checked with billiard 4.3.2."""

from __future__ import annotations

from billiard.einfo import ExceptionWithTraceback
from billiard.pool import Pool
from celery.concurrency.asynpool import AsynPool
from celery.concurrency.base import BasePool

from tasks.internals import PrivatePart

CHECKED_WITH = "billiard 4.3.2"


def unwrap(exc: BaseException) -> BaseException:
    """The exception a pool process raised, without billiard's traceback wrapper."""
    return exc.exc if isinstance(exc, ExceptionWithTraceback) else exc


PARTS = [
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
