"""Beat-scheduled maintenance jobs; each hands its work to agents/ or db/."""

from __future__ import annotations

from typing import Any

import structlog

from agents.connections import registry
from agents.monitoring.alerting import Transition
from agents.names import (
    ANALYZE_TASK,
    HEALTH_REPORT_TASK,
    MONITOR_TASK,
    PRUNE_REGISTRY_TASK,
    REAP_STUCK_TASK,
    RETENTION_TASK,
)
from agents.registry import EngineCard
from agents.settings import get_settings
from tasks.app import app
from tasks.publisher import queue_for

log = structlog.get_logger("agents.maintenance")


@app.task(name=PRUNE_REGISTRY_TASK)
def prune_registry() -> int:
    """Drop expired worker heartbeats from the registry; returns how many went."""
    return registry().prune()


@app.task(name=REAP_STUCK_TASK)
def reap_stuck() -> dict[str, int]:
    """Fail (or re-queue, when idempotent) tasks stuck in 'processing'."""
    from agents.reaper import reap

    return reap(requeue=_requeue)


def _requeue(card: EngineCard, request: dict[str, Any], task_id: str, retries: int) -> None:
    # By name, to the queue the engine announced: the reaper needs no engine's code. The run
    # counts as a retry, so its own records carry the count whatever order they are written in.
    app.send_task(
        card.task, args=(request,), task_id=task_id, queue=queue_for(app, card.queue), retries=retries
    )


@app.task(name=RETENTION_TASK)
def apply_retention() -> dict[str, int]:
    """Delete history older than HISTORY_RETENTION_DAYS in bounded batches."""
    from db.maintenance import delete_older_than

    settings = get_settings()
    deleted = delete_older_than(settings.history_retention_days, settings.retention_batch_size)
    log.info("retention_applied", **deleted)
    return deleted


@app.task(name=HEALTH_REPORT_TASK)
def health_report() -> dict[str, Any]:
    """Run the daily checks, store the report in PostgreSQL and log it."""
    from agents.doctor import as_report, run_checks
    from db.maintenance import store_health_report

    report = as_report(run_checks(get_settings(), ping=lambda: app.control.ping(timeout=2.0)))
    report["id"] = store_health_report(report)
    log.info(
        "health_report",
        healthy=report["healthy"],
        failed=[c["name"] for c in report["checks"] if not c["ok"]],
    )
    return report


@app.task(name=ANALYZE_TASK)
def analyze() -> list[str]:
    """ANALYZE the hot tables so the planner keeps using the right indexes."""
    from db.maintenance import analyze as run_analyze

    return run_analyze()


@app.task(name=MONITOR_TASK)
def monitor(
    thresholds_yaml: str | None = None, rules_yaml: str | None = None, scope: str = ""
) -> dict[str, list[dict[str, Any]]]:
    """Evaluate the thresholds (MONITORING_THRESHOLDS) over a fresh snapshot and store and send
    the alerts that fired or resolved; then let the optimization rules (OPTIMIZATION_RULES) act.

    A run may bring its own thresholds and rules as YAML text (`agents demo` does); its state is
    then kept apart under `scope`, so it never disturbs the scheduled run's `for` windows.
    """
    from agents.connections import redis_client
    from agents.monitoring.files import configured_rules, configured_thresholds
    from agents.monitoring.monitor import Monitor, as_payload
    from agents.monitoring.optimization import parse_rules
    from agents.monitoring.thresholds import PLATFORM, parse
    from agents.names import MONITOR_STATE_KEY, OPTIMIZER_STATE_KEY
    from tasks.optimizer import Optimizer

    settings = get_settings()
    thresholds = parse(thresholds_yaml, f"{scope or 'task'} thresholds") if thresholds_yaml else None
    rules = parse_rules(rules_yaml, f"{scope or 'task'} rules") if rules_yaml else None
    suffix = f":{scope}" if scope else ""
    watcher = Monitor(
        redis_client(), thresholds or configured_thresholds(settings), state_key=MONITOR_STATE_KEY + suffix
    )
    transitions = watcher.run_once()
    alerts = [as_payload(t) for t in transitions]
    for transition in transitions:
        if transition.kind == "fired" and transition.subject != PLATFORM:
            _explain_alert(transition, watcher.interval)
    optimizer = Optimizer(
        app, redis_client(), rules or configured_rules(settings), state_key=OPTIMIZER_STATE_KEY + suffix
    )
    actions = optimizer.run(watcher.measured)
    return {"alerts": alerts, "actions": actions}


def _explain_alert(transition: Transition, interval: float) -> None:
    """The performance engine's alert starts the analysis engine's pipeline on the alerted engine,
    over the time its condition has held (and two readings more, grown forward until it holds
    enough finished requests to judge), against the hour before."""
    from agents.monitoring.insights import Rules
    from tasks.analysis_pipeline import start_analysis

    threshold = transition.threshold
    window = threshold.for_seconds + 2 * max(interval, 1.0)
    reason = f"alert {threshold.name} on {transition.subject}"
    started = start_analysis(reason, transition.subject, window, min_recent=Rules().min_samples)
    log.info("alert_analysis_started", alert=threshold.name, subject=transition.subject, pipeline=started.id)
