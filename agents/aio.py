"""Runs engine coroutines from synchronous Celery tasks on one event loop per thread.

Reusing the loop keeps an engine's async connections alive between tasks instead of opening
them again for every task, which `asyncio.run` would do.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
_local = threading.local()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion on this thread's long-lived event loop."""
    loop: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _local.loop = loop
    task = loop.create_task(coro)
    try:
        return loop.run_until_complete(task)
    except BaseException:
        # A soft time limit interrupts the loop from a signal handler; cancel the orphaned
        # task so it cannot resume inside the next request.
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                loop.run_until_complete(task)
        raise
