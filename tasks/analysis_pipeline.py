"""The analysis engine's pipeline as a Celery canvas on the maintenance queue:

    chord(group(aggregate(engine) for each engine seen in the recent window), explain)

Each aggregate step reads one engine's history and judges it; the explain step stores the new
insights, publishes them on NATS `agents.insights` and returns them with every aggregate. Beat
starts it every ANALYSIS_INTERVAL_SECONDS; anything else (the monitor, an operator) calls
`start_analysis`.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from celery import Task, chord, group
from celery.result import AsyncResult

from agents.connections import redis_client
from agents.monitoring.insights import Window
from agents.names import ANALYSIS_AGGREGATE_TASK, ANALYSIS_EXPLAIN_TASK, INSIGHTS_TASK
from agents.recorder import written_through
from agents.settings import get_settings
from tasks.app import app

log = structlog.get_logger("agents.analysis")
SETTLE_TRIES = 30  # one a second: a window still unsettled after half a minute is judged as it is


@app.task(name=ANALYSIS_AGGREGATE_TASK, bind=True, max_retries=None)
def aggregate(
    self: Task,
    engine: str,
    until: float,
    recent_seconds: float,
    baseline_seconds: float,
    unfinished_before: int | None = None,
    min_recent: int = 0,
) -> dict[str, Any]:
    """One engine's aggregates per capability and candidate insights over the window, once the
    window has settled: its records written, and its unfinished requests no longer finishing
    (waiting up to SETTLE_TRIES seconds, then judging what there is). With `min_recent`, a recent
    window holding fewer finished requests than that grows forward (same split) until it does."""
    from agents.monitoring.analysis import engine_report
    from db.insights import analysed_count, unfinished

    # An alert's window is seconds long, and the requests of a degraded engine wait in its
    # backed-up queue: judged at once, the window reads as empty (issue 12: the demo's insight
    # went missing that way). History writers lagging under load hide records the same way.
    # Requests that stopped finishing (a stale row) end the wait: only progress is waited for.
    behind = until - written_through(redis_client())
    waiting = unfinished(engine, until - recent_seconds, until) if behind <= 0 else None
    draining = (
        waiting is not None and waiting > 0 and (unfinished_before is None or waiting < unfinished_before)
    )
    retries_left = self.request.retries < SETTLE_TRIES
    if (behind > 0 or draining) and retries_left:
        raise self.retry(countdown=1.0, kwargs={"unfinished_before": waiting, "min_recent": min_recent})
    # Routing moves traffic off a degraded engine within seconds, so its alert's window can hold
    # too few requests to judge (the demo's insight went missing that way on CI): wait for more.
    if min_recent and retries_left and analysed_count(engine, until - recent_seconds, until) < min_recent:
        now = time.time()
        grown = (engine, now, recent_seconds + max(0.0, now - until), baseline_seconds)
        raise self.retry(countdown=1.0, args=grown, kwargs={"min_recent": min_recent})
    if behind > 0 or waiting:
        log.info("analysis_window_unsettled", engine=engine, history_behind_seconds=round(behind, 1),
                 unfinished=waiting)  # fmt: skip
    window = Window(until, recent_seconds, baseline_seconds)
    return engine_report(engine, window, get_settings().analysis_samples_limit)


@app.task(name=ANALYSIS_EXPLAIN_TASK)
def explain(reports: list[dict[str, Any]], reason: str) -> dict[str, Any]:
    """Store and publish the new insights of every engine's report; returns them and the aggregates."""
    from agents.monitoring.analysis import explain as explain_reports

    return explain_reports(reports, reason, get_settings().insight_cooldown_seconds)


@app.task(name=INSIGHTS_TASK)
def scheduled_analysis() -> str:
    """Beat's entry: start the pipeline over the configured windows; returns its result's id."""
    return start_analysis("schedule").id


def start_analysis(
    reason: str,
    subject: str | None = None,
    window_seconds: float | None = None,
    baseline_seconds: float | None = None,
    min_recent: int = 0,
) -> AsyncResult:
    """Start the pipeline over the last `window_seconds` (ANALYSIS_RECENT_SECONDS) against the
    `baseline_seconds` (ANALYSIS_BASELINE_SECONDS) before them, for the engine `subject` or every
    engine with requests in the recent window; `min_recent`: see `aggregate`. `reason` travels
    into each insight's evidence.
    Returns the explain step's result: `.get()` gives {"reason", "engines", "aggregates", "insights"}."""
    settings = get_settings()
    recent = settings.analysis_recent_seconds if window_seconds is None else window_seconds
    baseline = settings.analysis_baseline_seconds if baseline_seconds is None else baseline_seconds
    if recent <= 0 or baseline <= 0:
        raise ValueError(f"windows must be positive seconds, got window {recent} and baseline {baseline}")
    window = Window(time.time(), recent, baseline)
    if subject is not None:
        engines = [subject]
    else:
        from db.insights import engines_seen

        engines = engines_seen(window.split, window.until)
    body = explain.s(reason=reason)
    if not engines:  # a chord needs a header: with nothing to aggregate, explain nothing at once
        return body.apply_async(args=([],))
    parts = [
        aggregate.s(e, window.until, window.recent_seconds, window.baseline_seconds, min_recent=min_recent)
        for e in engines
    ]
    return chord(group(parts))(body)
