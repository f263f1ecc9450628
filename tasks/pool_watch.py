"""A dead pool process is noticed at once, not after Celery's 5 s pool timer.

Celery's prefork pool learns that a child died when the child's sentinel pipe becomes readable,
and then asks the kernel once (waitpid, WNOHANG). The pipe closes while the child is still
exiting, so that one question can come too early: the child is not yet a zombie, nothing is
cleaned up, and the sentinel is no longer watched. The next look is the pool's 5 s timer, so the
job of the dead child waits until then or until its hard time limit fails it instead of it being
reported lost (seen with celery 5.7, billiard 4.3.2: a batch of good requests failed with
TimeLimitExceeded(4) beside a poison that had exited at once). This worker step asks again,
soon and a few times, until the dead child has been reaped.
"""

from __future__ import annotations

from typing import Any

import structlog
from celery import bootsteps
from celery.concurrency.asynpool import AsynPool

log = structlog.get_logger("agents.pool_watch")

# Seconds between the re-checks after a child's sentinel fired: quick at first, then backing off.
RECHECKS = (0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)


class PromptReaping(bootsteps.StartStopStep):
    """Worker step: after a pool child's exit is signalled, re-check until it was reaped."""

    requires = ("celery.worker.components:Pool",)

    def start(self, worker: Any) -> None:
        pool = getattr(worker.pool, "_pool", None)
        if isinstance(pool, AsynPool):  # only the prefork pool watches sentinels
            watch(pool)


def watch(pool: AsynPool) -> None:
    """Wrap the pool's exit handler; must run before the pool registers with the event loop."""
    on_exit = pool._event_process_exit

    def on_exit_then_recheck(hub: Any, proc: Any) -> None:
        on_exit(hub, proc)
        _recheck(pool, hub, proc, 0)

    pool._event_process_exit = on_exit_then_recheck


def _recheck(pool: AsynPool, hub: Any, proc: Any, attempt: int) -> None:
    if proc not in pool._pool:  # reaped: its jobs were failed or retried as WorkerLostError
        if attempt:
            log.info("pool_child_reaped_on_recheck", pid=proc.pid, recheck=attempt)
        return
    if attempt >= len(RECHECKS):
        log.warning("pool_child_not_reaped", pid=proc.pid)
        return
    hub.call_later(RECHECKS[attempt], _recheck_now, pool, hub, proc, attempt + 1)


def _recheck_now(pool: AsynPool, hub: Any, proc: Any, attempt: int) -> None:
    pool.maintain_pool()
    _recheck(pool, hub, proc, attempt)
