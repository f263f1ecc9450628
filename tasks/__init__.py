"""Celery entry point: `celery -A tasks ...`, and `from tasks import route`."""

from __future__ import annotations

# Lifecycle signal handlers must be connected in callers too: they record "queued" at publish.
import tasks.lifecycle  # noqa: F401
from tasks.app import app
from tasks.engine_tasks import ENGINE_TASKS, engine_task
from tasks.router import route

__all__ = ["ENGINE_TASKS", "app", "engine_task", "route"]
