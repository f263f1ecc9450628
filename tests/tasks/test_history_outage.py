"""Done-when of durable history: a mixed workload with a PostgreSQL restart in the middle
leaves every task id that was sent exactly once in task_results, with its final status."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text

from agents.recorder import backlog
from db.session import get_engine
from tests.conftest import RUNNING, restart_server, wait_for_history

pytestmark = pytest.mark.servers


def send_mixed_workload(ids: dict[str, str]) -> None:
    """Publish successes, failures, retries, time limits and router rejections; remember ids."""
    from tasks import engine_task, route

    flaky = engine_task("flaky")
    for i in range(40):
        ids[route.delay({"capability": "analysis", "payload": {"data": [i, i + 1]}}).id] = "success"
    for _ in range(5):
        ids[flaky.delay({"payload": {"fail": True}}).id] = "failed"
        ids[flaky.delay({"payload": {"transient_failures": 1}}).id] = "success"
        ids[route.delay({"capability": "no-such-capability"}).id] = "rejected"
        ids[route.delay({"payload": {}}).id] = "rejected"
    ids[flaky.delay({"payload": {"sleep": 10}}).id] = "failed"  # soft time limit
    ids[flaky.delay({"payload": {"ignore_soft_limit": True}}).id] = "failed"  # hard time limit
    for i in range(40):
        ids[route.delay({"capability": "monitoring", "payload": {"metrics": {"cpu": [i]}}}).id] = "success"


def test_postgres_restart_mid_run_loses_and_duplicates_nothing(fleet: str, redis_client) -> None:
    ids: dict[str, str] = {}
    sender = threading.Thread(target=send_mixed_workload, args=(ids,))
    sender.start()
    # PostgreSQL goes away while tasks are being sent, run and recorded, and comes back.
    RUNNING["postgres"].stop()
    time.sleep(3.0)
    held_in_redis = backlog(redis_client)
    restart_server("postgres")
    sender.join()
    assert held_in_redis > 0  # the outage was felt: records waited in Redis
    rows = wait_for_history(list(ids), timeout=90)
    wrong = {tid: (rows[tid]["status"], want) for tid, want in ids.items() if rows[tid]["status"] != want}
    assert wrong == {}
    with get_engine().connect() as connection:
        count = connection.execute(
            text("SELECT count(*), count(DISTINCT task_id) FROM task_results WHERE task_id = ANY(:ids)"),
            {"ids": list(ids)},
        ).one()
    assert tuple(count) == (len(ids), len(ids)) == (102, 102)
