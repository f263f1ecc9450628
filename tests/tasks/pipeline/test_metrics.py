"""The pipeline's counters at the source match task_results exactly, on every execution path."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from typing import Any

import pytest

from agents.recorder import backlog
from agents.statuses import FINAL_STATUSES, RETRYING
from agents.telemetry.store import read
from tests.conftest import wait_for_history

pytestmark = pytest.mark.servers


def database_counts() -> tuple[Counter[str], int]:
    """task_results rows by status, and the retries they record."""
    from sqlalchemy import text

    from db.session import get_engine

    query = text("SELECT status, COUNT(*), COALESCE(SUM(retries), 0) FROM task_results GROUP BY status")
    with get_engine().connect() as connection:
        rows = list(connection.execute(query))
    return Counter({status: int(n) for status, n, _ in rows}), sum(int(r) for _, _, r in rows)


def counter_counts(client: Any) -> Counter[str]:
    """agent_tasks_total summed over engines, by status."""
    totals: Counter[str] = Counter()
    for (_, status), value in read(client).counters.get("agent_tasks", {}).items():
        totals[status] += int(value)
    return totals


def settled(client: Any, timeout: float = 30.0) -> tuple[Counter[str], Counter[str], int]:
    """Counters and rows once the history writer caught up and nothing moves for a second."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if backlog(client) == 0:
            rows, retries = database_counts()
            now = (counter_counts(client), rows, retries)
            if now == last:
                return now
            last = now
        time.sleep(0.5)
    raise TimeoutError(f"counts still moving after {timeout}s: {last}")


def test_counters_equal_task_results_per_status(fleet: str, batch_worker: None, redis_client: Any) -> None:
    from tasks import app, engine_task, route

    counters_before, rows_before, retries_before = settled(redis_client)
    results = []
    # Routed (router batch path, then the analysis batch engine): successes and refusals.
    results += [route.delay({"capability": "analysis", "payload": {"data": [i, 2]}}) for i in range(20)]
    results += [route.delay({"capability": "teleport"}), route.delay([1, 2])]
    # Per-request engine (Celery's tracer): success, failure, a retry then success.
    flaky = engine_task("flaky")
    results += [flaky.delay({"payload": {}}), flaky.delay({"payload": {"fail": True}})]
    results += [flaky.delay({"payload": {"transient_failures": 1}})]
    # Batch engine: success and failure.
    batchy = engine_task("batchy")
    results += [batchy.delay({"payload": {}}) for _ in range(5)] + [batchy.delay({"payload": {"fail": True}})]
    # Revoked before it ran.
    revoked_id = str(uuid.uuid4())
    app.control.revoke(revoked_id)
    time.sleep(1)
    results.append(batchy.apply_async(({"payload": {}},), task_id=revoked_id))
    for result in results:
        result.get(timeout=60, propagate=False)  # failures and the revoked one come back as values
    rows = wait_for_history([r.id for r in results], timeout=60)
    assert Counter(row["status"] for row in rows.values()) == Counter(
        success=27, rejected=2, failed=2, revoked=1
    ), rows
    assert rows[results[24].id]["retries"] == 1

    counters_after, rows_after, retries_after = settled(redis_client)
    for status in sorted(FINAL_STATUSES):
        assert counters_after[status] - counters_before[status] == rows_after[status] - rows_before[status], (
            status
        )
    assert counters_after[RETRYING] - counters_before[RETRYING] == retries_after - retries_before
    # And the run above is in them: not a pair of zeros.
    assert counters_after["success"] - counters_before["success"] >= 27
