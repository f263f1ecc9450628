"""The analysis engine's two steps over the history, as the pipeline's tasks call them: one engine's
figures (read from PostgreSQL, judged by agents/monitoring/detectors.py), then the explanation
(new insights stored once per cooldown, published on NATS `agents.insights`, returned)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog

from agents import aio
from agents.monitoring.detectors import engine_figures
from agents.monitoring.insights import ACTION_VERDICT, Insight, Rules, Window
from agents.names import INSIGHTS_SUBJECT
from agents.telemetry.catalog import INSIGHTS
from agents.telemetry.tally import Tally

log = structlog.get_logger("agents.analysis")


def engine_report(engine: str, window: Window, limit: int, rules: Rules | None = None) -> dict[str, Any]:
    """One engine's aggregates and candidate insights over the window (JSON-ready). Each window is
    read with its own limit, so a busy recent window cannot crowd the baseline out."""
    from db.insights import read_samples

    samples = [
        *read_samples(engine, window.split, window.until, limit),
        *read_samples(engine, window.start, window.split, limit),
    ]
    return engine_figures(engine, samples, window, rules or Rules())


def explain(reports: Sequence[dict[str, Any]], reason: str, cooldown_seconds: float) -> dict[str, Any]:
    """Store each report's insights (the cooldown drops repeats), publish the new ones, and return
    them with every engine's aggregates: the pipeline's result."""
    from db.insights import store_insight

    stored: list[dict[str, Any]] = []
    for report in reports:
        for found in report["insights"]:
            insight = Insight(**found | {"evidence": found["evidence"] | {"trigger": reason}})
            row = store_insight(insight, cooldown_seconds, engine=report["engine"])
            if row is not None:
                stored.append(as_payload(row))
    for payload in stored:
        (log.info if payload["severity"] == "info" else log.warning)("insight", **payload)
    # What each engine's judgement rested on, so "no insight" can be told from "no samples".
    log.info(
        "analysis_explained", reason=reason, stored=len(stored),
        samples={r["engine"]: {w: sum(a.get("count", 0) for a in rows) for w, rows in r["aggregates"].items()}
                 for r in reports},
    )  # fmt: skip
    counted(stored)
    publish(stored)
    return {
        "reason": reason,
        "engines": [r["engine"] for r in reports],
        "aggregates": [
            a | {"window": w} for r in reports for w, rows in r["aggregates"].items() for a in rows
        ],
        "insights": stored,
    }


def report_verdict(action: dict[str, Any], metric: str, after: float, judged: str) -> dict[str, Any] | None:
    """The optimization engine's measured effect of one action, stored and published as an insight
    (so the analysis and the people reading `agents insights` see what the platform did and why)."""
    from db.insights import store_insight

    before = float(action["before"]["value"])
    insight = Insight(
        kind=ACTION_VERDICT,
        subject=str(action["engine"]),
        severity="warning" if judged == "hurt" else "info",
        summary=(
            f"{action['action']} on {action['engine']} ({action['rule']}) {judged.replace('_', ' ')}: "
            f"{metric} {before:g} -> {after:g}{'; reverted' if judged == 'hurt' else ''}"
        ),
        evidence={"action_id": action["id"], "metric": metric, "before": before, "after": after,
                  "params": action.get("params"), "verdict": judged},
    )  # fmt: skip
    row = store_insight(insight, cooldown_seconds=0, engine=insight.subject)
    if row is None:
        return None
    payload = as_payload(row)
    log.info("insight", **payload)
    counted([payload])
    publish([payload])
    return payload


def counted(payloads: Sequence[dict[str, Any]]) -> None:
    """Count stored insights (`agent_insights_total`, for Grafana)."""
    from agents.connections import redis_client
    from agents.recorder import count

    tally = Tally()
    for p in payloads:
        tally.inc(INSIGHTS, (p["kind"], p["subject"] or "", p["severity"]))
    count(redis_client(), tally)


def as_payload(row: dict[str, Any]) -> dict[str, Any]:
    """A stored insight as JSON: what NATS subscribers, the task result and the log get."""
    return {
        "id": row["id"], "kind": row["kind"], "subject": row["subject"], "severity": row["severity"],
        "summary": row["summary"], "engine": row["engine"], "evidence": row["data"],
        "created_at": row["created_at"].isoformat(),
    }  # fmt: skip


def publish(payloads: Sequence[dict[str, Any]]) -> None:
    """Each insight on NATS `agents.insights`; NATS being away never loses one (it is stored)."""
    if not payloads:
        return
    from agents.nats_client import publish_many

    try:
        aio.run(publish_many([(INSIGHTS_SUBJECT, p) for p in payloads]))
    except Exception as exc:  # NATS away: the insight is stored and logged anyway
        log.warning("insight_nats_failed", count=len(payloads), error=repr(exc))
