"""Vanilla Celery for comparison: one no-op task, default settings except JSON (as the platform)."""

from __future__ import annotations

import os

from celery import Celery

app = Celery("vanilla", broker=os.environ["BENCH_REDIS_URL"], backend=os.environ["BENCH_REDIS_URL"])
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])


@app.task(name="vanilla.noop")
def noop(request: dict[str, object]) -> dict[str, object]:
    """Return the request's payload unchanged."""
    return {"echo": request.get("payload")}
