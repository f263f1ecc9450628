"""How one engine's worker is started: `agents worker NAME` is a thin wrapper over celery."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence

from agents.base import BaseAgent
from agents.catalog import engines
from agents.errors import EngineConfigError
from agents.limits import hard_limit, soft_limit
from agents.models import AgentConfig
from agents.names import INTELLIGENCE, MAINTENANCE_QUEUE, ROUTE_FLUSH_EVERY, ROUTER_QUEUE
from agents.settings import get_settings


def worker_argv(name: str, extra: Sequence[str] = ()) -> list[str]:
    """The `celery worker` command line for engine `name`: its queue, concurrency and limits."""
    catalog = engines()
    if name not in catalog:
        raise EngineConfigError(f"no engine named {name!r}; known: {', '.join(sorted(catalog))}")
    config = catalog[name].config
    assert config is not None  # nosec B101 # narrows the type for mypy, not a check
    hard = hard_limit(config.task_timeout_seconds)
    return [
        sys.executable, "-m", "celery", "-A", "tasks", "worker",
        # The intelligence worker also runs the beat maintenance jobs.
        "--queues", f"{name},{MAINTENANCE_QUEUE}" if name == INTELLIGENCE else name,
        "--hostname", f"{name}@%h",
        "--concurrency", str(config.max_concurrent_tasks),
        "--pool", config.pool,
        "--soft-time-limit", str(soft_limit(hard)),
        "--time-limit", str(hard),
        "--loglevel", get_settings().log_level,
        "--prefetch-multiplier", str(prefetch_multiplier(name, config)),
        *extra,
    ]  # fmt: skip


def prefetch_multiplier(name: str, config: AgentConfig) -> int:
    """Messages reserved per pool process: enough for two batches where the worker runs batch
    tasks (the router on the intelligence worker, high-throughput engines), else the setting."""
    batch = config.batch_size
    if name == ROUTER_QUEUE:
        batch = max(batch, ROUTE_FLUSH_EVERY)
    if batch <= 1:
        return get_settings().worker_prefetch_multiplier
    return -(-2 * batch // config.max_concurrent_tasks)


def exec_worker(name: str, extra: Sequence[str] = ()) -> None:
    """Replace this process with the worker, so SIGTERM reaches Celery for a warm shutdown."""
    argv = worker_argv(name, extra)
    os.execv(argv[0], argv)  # nosec B606 # this interpreter running celery; options from the catalog


async def run_worker_process(engine: BaseAgent) -> int:
    """Run `engine`'s worker as a child process until it exits; returns its exit status."""
    process = await asyncio.create_subprocess_exec(*worker_argv(engine.name))
    return await process.wait()
