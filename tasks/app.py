"""The Celery app: created, configured from `celeryconfig`, task modules listed explicitly.

`tasks.pipeline.signals` connects Celery's signals to the pipeline's hooks (tasks/pipeline).
"""

from __future__ import annotations

from celery import Celery

from agents.logs import configure_logging
from tasks.health_server import HealthServer
from tasks.pool_watch import PromptReaping

configure_logging()

app = Celery(
    "agents",
    include=[
        "tasks.routing_task",
        "tasks.engine_tasks",
        "tasks.maintenance",
        "tasks.heartbeat",
        "tasks.history_writer",
        "tasks.pipeline.signals",
    ],
)
app.config_from_object("celeryconfig")
app.steps["worker"].add(PromptReaping)
app.steps["worker"].add(HealthServer)
