"""Discovery without restarts: an engine announced by its own worker is routable by a router and
a caller that never imported its code (the seed's "agent discovery and registration")."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import wait_for_history

pytestmark = pytest.mark.servers


def test_a_custom_engine_on_its_own_worker_is_routable_from_the_stock_stack(
    late_worker: None, redis_client: Any
) -> None:
    from agents.catalog import engines
    from tasks import app, route

    # Given a router (the fleet worker) and a caller (this process) without the engine's code
    assert "late" not in engines() and "agents.engine.late" not in app.tasks
    # When a request for its capability is routed
    result = route.delay({"capability": "late_arrival", "payload": {"n": 1}})
    # Then the engine's worker ran it under the caller's task id
    assert result.get(timeout=30) == {"engine": "late", "task_id": result.id, "payload": {"n": 1}}
    row = wait_for_history([result.id])[result.id]
    assert (row["status"], row["engine"], row["task_name"]) == ("success", "late", "agents.engine.late")
    assert "late" in row["reason"]


def test_the_reaper_and_callers_reach_it_by_its_card(late_worker: None, redis_client: Any) -> None:
    from agents.connections import registry
    from tasks import app
    from tasks.publisher import queue_for

    card = registry().cards()["late"]
    assert (card.task, card.queue, card.time_limit) == ("agents.engine.late", "late", 300)
    # A plain Celery client publishes by name to the announced queue, as the reaper does.
    result = app.send_task(card.task, args=({"payload": {"n": 2}},), queue=queue_for(app, card.queue))
    assert result.get(timeout=30)["payload"] == {"n": 2}
