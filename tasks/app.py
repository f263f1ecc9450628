"""The Celery app: created, configured from `celeryconfig`, task modules listed explicitly."""

from __future__ import annotations

from celery import Celery

from agents.logs import configure_logging

configure_logging()

app = Celery(
    "agents",
    include=[
        "tasks.router",
        "tasks.engine_tasks",
        "tasks.maintenance",
        "tasks.heartbeat",
        "tasks.lifecycle",
        "tasks.history_writer",
        "tasks.bridge_results",
    ],
)
app.config_from_object("celeryconfig")
