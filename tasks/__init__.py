"""Celery entry point: `celery -A tasks ...`, and `from tasks import route`."""

from __future__ import annotations

# The pipeline's signal adapter must be connected in callers too: hooks see every publish.
import tasks.pipeline.signals  # noqa: F401
from tasks.app import app
from tasks.engine_tasks import ENGINE_TASKS, engine_task
from tasks.routing_task import route

__all__ = ["ENGINE_TASKS", "app", "engine_task", "route"]
