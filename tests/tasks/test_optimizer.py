"""The optimization engine acts through Celery's remote control, judges the action after its settle
window, and reverts it when it hurt."""

from __future__ import annotations

import time
from typing import Any

import pytest

from agents.monitoring.optimization import parse_rules
from agents.monitoring.snapshot import measurements
from tests.conftest import wait_for_history

pytestmark = pytest.mark.servers

RULES = """\
rules:
  - name: GrowCounter
    selector: counter
    metric: queue_depth
    comparison: ">"
    value: 5
    action: pool_grow
    amount: 1
    max_concurrency: 8
    cooldown: 0s
    settle: 1s
    better: {better}
"""


def pool_size(fleet: str) -> int:
    from tasks import app

    stats = app.control.inspect(destination=[fleet], timeout=5).stats() or {}
    return len(stats[fleet]["pool"]["processes"])  # max-concurrency stays the start-up value


def wait_for_pool(fleet: str, size: int) -> int:
    """The pool's size once it reached `size` (the pool starts a process in its own time)."""
    deadline = time.monotonic() + 10
    while (now := pool_size(fleet)) != size and time.monotonic() < deadline:
        time.sleep(0.2)
    return now


def snapshot(client: Any, previous: Any = None) -> tuple[dict[str, dict[str, float]], Any]:
    from agents.monitoring.readings import take_reading

    reading = take_reading(client)
    return measurements(previous, reading), reading


def backed_up_then_drained(
    fleet: str, client: Any, optimizer: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Back the counter queue up, run the optimizer (it acts), drain it, run it again (it judges)."""
    from tasks import app, engine_task

    app.control.cancel_consumer("counter", destination=[fleet], reply=True)
    try:
        results = [engine_task("counter").delay({"payload": {}}) for _ in range(10)]
        measured, _ = snapshot(client)
        acted = optimizer.run(measured)
    finally:
        app.control.add_consumer("counter", destination=[fleet], reply=True)
    wait_for_history([r.id for r in results])
    time.sleep(1.2)  # the settle window
    measured, _ = snapshot(client)
    return acted, optimizer.run(measured)


def test_an_action_that_helped_stays_and_one_that_hurt_is_reverted(fleet: str, redis_client: Any) -> None:
    from db.actions import list_actions
    from tasks import app
    from tasks.optimizer import Optimizer

    start = pool_size(fleet)
    try:
        helped = Optimizer(app, redis_client, parse_rules(RULES.format(better="lower")))
        acted, judged = backed_up_then_drained(fleet, redis_client, helped)
        assert [(a["engine"], a["action"], a["status"]) for a in acted] == [
            ("counter", "pool_grow", "applied")
        ]
        assert wait_for_pool(fleet, start + 1) == start + 1  # the fleet's pool really grew
        assert [j["verdict"] for j in judged if "verdict" in j] == ["helped"]  # 10 waiting -> 0
        row = next(r for r in list_actions() if r["id"] == acted[0]["id"])
        assert (row["before"]["value"], row["after"]["value"], row["verdict"]) == (10, 0, "helped")

        # The same, told that a shorter queue is worse: the action "hurt" and is undone.
        redis_client.delete("agents:optimizer:state")
        hurt = Optimizer(app, redis_client, parse_rules(RULES.format(better="higher")))
        acted, judged = backed_up_then_drained(fleet, redis_client, hurt)
        assert [a["action"] for a in acted] == ["pool_grow"]
        assert [j.get("verdict") or j.get("action") for j in judged] == ["hurt", "pool_shrink"]
        assert wait_for_pool(fleet, start + 1) == start + 1  # grown twice, reverted once
        revert = list_actions(limit=1)[0]
        assert (revert["action"], revert["status"], revert["rule"]) == (
            "pool_shrink",
            "revert",
            "GrowCounter",
        )
    finally:
        now = pool_size(fleet)
        if now > start:
            app.control.pool_shrink(now - start, destination=[fleet], reply=True)
    assert wait_for_pool(fleet, start) == start


def test_time_limit_action_changes_the_engine_tasks_limits_and_its_revert_restores_them(
    fleet: str, redis_client: Any
) -> None:
    from agents.monitoring.optimization import revert
    from tasks import app
    from tasks.optimizer import Optimizer

    def limits() -> str:
        registered = app.control.inspect(destination=[fleet], timeout=5).registered(
            "time_limit", "soft_time_limit"
        )
        return next(t for t in (registered or {})[fleet] if t.startswith("agents.engine.flaky "))

    optimizer = Optimizer(app, redis_client, parse_rules(RULES.format(better="lower")))
    soft, hard = optimizer._limits()["flaky"]
    original = limits()
    assert f"time_limit={hard}" in original and f"soft_time_limit={soft}" in original
    params = {"soft": 1.5, "hard": 2.5, "from": {"soft": soft, "hard": hard}}
    assert optimizer._act("flaky", "time_limit", params)
    assert "time_limit=2.5" in limits() and "soft_time_limit=1.5" in limits()
    assert optimizer._act("flaky", *revert("time_limit", params))
    assert limits() == original
