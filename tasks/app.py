"""The Celery app: created, configured from `celeryconfig`, task modules listed explicitly.

`tasks.pipeline.signals` connects Celery's signals to the pipeline's hooks (tasks/pipeline).
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

from agents.logs import configure_logging, use_formatter
from agents.settings import get_settings
from tasks.health_server import HealthServer
from tasks.pool_watch import PromptReaping

configure_logging()

app = Celery(
    "agents",
    include=[
        "tasks.routing_task",
        "tasks.engine_tasks",
        "tasks.maintenance",
        "tasks.analysis_pipeline",
        "tasks.heartbeat",
        "tasks.history_writer",
        "tasks.config_check",
        "tasks.pipeline.signals",
    ],
)
app.config_from_object("celeryconfig")
app.steps["worker"].add(PromptReaping)
app.steps["worker"].add(HealthServer)


@after_setup_logger.connect
@after_setup_task_logger.connect
def _platform_log_format(logger: Any, **_: Any) -> None:
    # Celery sets up the worker's and beat's handlers; every line then has the platform's format.
    use_formatter(logger, get_settings().log_format)
