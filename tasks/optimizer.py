"""The optimization engine's hands: its rules' decisions (agents/monitoring/optimization.py) carried
out through Celery's own remote control, recorded in `optimization_actions`, judged after their
settle window, and reverted when they hurt.

Actions go to the engine's live workers only (`destination`): `pool_grow` / `pool_shrink`,
`rate_limit` and `time_limit` on the engine's task, `add_consumer` / `cancel_consumer`. A
worker's concurrency for the rules' bounds is its pool's process count from `celery inspect
stats`; a time_limit action records the limits of the engine's card, to revert to.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis
import structlog
from celery import Celery

from agents.connections import registry
from agents.monitoring.analysis import report_verdict
from agents.monitoring.optimization import (
    ActionState,
    Decision,
    Rules,
    decide,
    revert,
    sized_engines,
    verdict,
)
from agents.names import OPTIMIZER_STATE_KEY, engine_task_name
from agents.recorder import count
from agents.telemetry.catalog import OPTIMIZATION_ACTIONS
from agents.telemetry.tally import Tally

log = structlog.get_logger("agents.optimizer")
CONTROL_TIMEOUT_SECONDS = 2.0


class Optimizer:
    """One optimization step per monitor run: settle what is due, then decide and act."""

    def __init__(
        self, app: Celery, client: redis.Redis, rules: Rules, state_key: str = OPTIMIZER_STATE_KEY
    ) -> None:
        self.app = app
        self.client = client
        self.rules = rules
        self.state_key = state_key  # an optimizer with other rules keeps its own guards
        self.by_name = {rule.name: rule for rule in rules.rules}

    def run(self, measured: dict[str, dict[str, float]], now: float | None = None) -> list[dict[str, Any]]:
        """Settle due actions, then take the actions this snapshot calls for; returns what was done."""
        from db import actions

        now = time.time() if now is None else now
        state = self._load()
        done: list[dict[str, Any]] = []
        for row in actions.unsettled():
            rule = self.by_name.get(str(row["rule"]))
            engine = str(row["engine"])
            if rule is None or now - row["applied_at"].timestamp() < rule.settle_seconds:
                continue
            if rule.judged_by not in measured.get(engine, {}):
                continue  # not measurable now (nothing completed in the window): wait
            after = measured[engine][rule.judged_by]
            judged = verdict(float(row["before"]["value"]), after, rule.better, rule.tolerance)
            actions.settle(row["id"], {"metric": rule.judged_by, "value": after}, judged)
            state.in_flight.discard(engine)
            report_verdict(row, rule.judged_by, after, judged)
            self._count(str(row["action"]), engine, judged)
            done.append(
                {
                    "id": row["id"],
                    "rule": rule.name,
                    "engine": engine,
                    "action": row["action"],
                    "verdict": judged,
                }
            )
            if judged == "hurt":
                action, params = _revert_of(row)
                self._act(engine, action, params)
                actions.record(engine, action, rule.name, f"revert of action {row['id']} (it hurt)", params,
                               actions.REVERT, {"metric": rule.judged_by, "value": after})  # fmt: skip
                done.append({"engine": engine, "action": action, "revert_of": row["id"]})
                self._count(action, engine, "revert")
        concurrency = self._concurrency(sized_engines(self.rules, measured))
        limits = self._limits() if any(r.action == "time_limit" for r in self.rules.rules) else {}
        for decision in decide(self.rules, measured, concurrency, now, state, limits):
            done.append(self._apply(decision, state))
        self.client.set(self.state_key, json.dumps(_dump(state)))
        return done

    def _apply(self, decision: Decision, state: ActionState) -> dict[str, Any]:
        from db import actions

        rule = decision.rule
        reason = f"{rule.name}: {rule.metric} = {decision.value:g} ({rule.comparison} {rule.value:g})"
        before = {"metric": rule.judged_by, "value": decision.before}
        status = actions.DRY_RUN
        if not decision.dry_run:
            status = (
                actions.APPLIED
                if self._act(decision.engine, decision.action, decision.params)
                else actions.FAILED
            )
            if status == actions.FAILED:
                state.in_flight.discard(decision.engine)
        action_id = actions.record(
            decision.engine, decision.action, rule.name, reason, decision.params, status, before
        )
        self._count(decision.action, decision.engine, status)
        log.warning("optimization_action", id=action_id, engine=decision.engine, action=decision.action,
                    params=decision.params, status=status, reason=reason)  # fmt: skip
        return {
            "id": action_id, "rule": rule.name, "engine": decision.engine, "action": decision.action,
            "status": status,
        }  # fmt: skip

    def _count(self, action: str, engine: str, outcome: str) -> None:
        tally = Tally()
        tally.inc(OPTIMIZATION_ACTIONS, (action, engine, outcome))
        count(self.client, tally)

    def _act(self, engine: str, action: str, params: dict[str, Any]) -> bool:
        """Send the remote-control command to the engine's live workers; True if they all did it."""
        workers = registry().live_workers().get(engine, [])
        if not workers:
            return False
        control, options = (
            self.app.control,
            {"destination": workers, "reply": True, "timeout": CONTROL_TIMEOUT_SECONDS},
        )
        if action == "pool_grow":
            replies = control.pool_grow(params["n"], **options)
        elif action == "pool_shrink":
            replies = control.pool_shrink(params["n"], **options)
        elif action == "rate_limit":
            replies = control.rate_limit(engine_task_name(engine), params["rate"] or "0", **options)
        elif action == "time_limit":
            replies = control.time_limit(
                engine_task_name(engine), soft=params["soft"], hard=params["hard"], **options
            )
        elif action == "add_consumer":
            replies = control.add_consumer(params["queue"], **options)
        else:
            replies = control.cancel_consumer(params["queue"], **options)
        # Each reply is {worker: {"ok": ...}} or {worker: {"error": ...}} (e.g. pool_grow with autoscale).
        answers = [answer for reply in replies or [] for answer in reply.values()]
        errors = [a["error"] for a in answers if isinstance(a, dict) and "error" in a]
        if errors:
            log.warning("optimization_action_refused", engine=engine, action=action, errors=errors)
        return bool(answers) and not errors

    def _limits(self) -> dict[str, tuple[float | None, float | None]]:
        """Each engine task's (soft, hard) time limits as its card announces them: where a
        time_limit action's revert goes back to."""
        return {name: (card.soft_time_limit, card.time_limit) for name, card in registry().cards().items()}

    def _concurrency(self, engines: list[str]) -> dict[str, int]:
        """Each engine's largest worker pool now (for the rules' bounds)."""
        live = registry().live_workers()
        found: dict[str, int] = {}
        for engine in engines:
            workers = live.get(engine, [])
            if not workers:
                continue
            stats = (
                self.app.control.inspect(destination=workers, timeout=CONTROL_TIMEOUT_SECONDS).stats() or {}
            )
            # The pool's processes now: `max-concurrency` keeps the start-up value after pool_grow.
            sizes = [len(s.get("pool", {}).get("processes", ())) for s in stats.values()]
            if sizes and max(sizes) > 0:
                found[engine] = max(sizes)
        return found

    def _load(self) -> ActionState:
        raw = self.client.get(self.state_key)
        if not raw:
            return ActionState()
        data = json.loads(raw)
        return ActionState(
            {_pair(k): float(v) for k, v in data["holding"].items()},
            {k: float(v) for k, v in data["last"].items()},
            set(data["in_flight"]),
        )


def _dump(state: ActionState) -> dict[str, Any]:
    return {
        "holding": {f"{rule}|{engine}": at for (rule, engine), at in state.holding_since.items()},
        "last": state.last_action,
        "in_flight": sorted(state.in_flight),
    }


def _revert_of(row: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return revert(str(row["action"]), dict(row["params"] or {}))


def _pair(key: str) -> tuple[str, str]:
    rule, _, engine = key.partition("|")
    return rule, engine
