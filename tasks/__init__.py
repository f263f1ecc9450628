"""Celery entry point: `celery -A tasks ...`, and `from tasks import route`."""

from __future__ import annotations

from tasks.app import app
from tasks.engine_tasks import ENGINE_TASKS, engine_task
from tasks.router import route

__all__ = ["ENGINE_TASKS", "app", "engine_task", "route"]
