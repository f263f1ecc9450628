"""`agents top`: the engines refreshed in place, from the same Redis counters the exporter serves.

Throughput and p95 runtime are differences between two refreshes (the first frame has no rate
and shows cumulative figures), computed by agents/telemetry/rates.py as Prometheus would.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass

import redis
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from agents.connections import redis_client, registry
from agents.recorder import backlog
from agents.routing.decision import BreakerState, Candidate
from agents.telemetry import catalog as m
from agents.telemetry.rates import (
    Bucket,
    Completions,
    bucket_delta,
    completions,
    completions_delta,
    failure_ratio,
    histogram_quantile,
    merge_buckets,
    rate,
)
from agents.telemetry.store import read

COLUMNS = ("engine", "live workers", "completed", "req/s", "failed", "p95 runtime", "queue", "breaker")
BREAKER_STYLE = {BreakerState.CLOSED: "green", BreakerState.HALF_OPEN: "yellow", BreakerState.OPEN: "red"}


@dataclass(frozen=True)
class Snapshot:
    """What one refresh read: counters, runtime histograms by task, live figures, backlog."""

    at: float  # time.monotonic(): only differences matter
    completions: dict[str, Completions]
    runtime: dict[str, list[Bucket]]
    candidates: list[Candidate]
    backlog: int


def take(client: redis.Redis) -> Snapshot:
    """Read everything one frame needs from Redis."""
    decoded = read(client)
    by_task: defaultdict[str, list[list[tuple[str, float]]]] = defaultdict(list)
    for (task, _queue), histogram in decoded.histograms.get(m.TASK_RUNTIME.name, {}).items():
        by_task[task].append(histogram.buckets)
    return Snapshot(
        at=time.monotonic(),
        completions=completions(decoded.counters.get(m.AGENT_TASKS.name, {})),
        runtime={task: merge_buckets(series) for task, series in by_task.items()},
        candidates=sorted(registry().candidates(), key=lambda c: c.engine),
        backlog=backlog(client),
    )


def open_alerts(engine: Engine | None = None) -> str:
    """The footer's word on alerts: open ones counted, or why there is no count."""
    from db.session import get_engine

    try:
        with (engine or get_engine()).connect() as connection:
            schema = inspect(connection)
            has_table = schema.has_table("alerts")
            columns = {c["name"] for c in schema.get_columns("alerts")} if has_table else set()
            if "resolved_at" not in columns:
                return "alerts: none recorded"
            query = text("SELECT count(*) FROM alerts WHERE resolved_at IS NULL")
            return f"alerts: {connection.execute(query).scalar_one()} open"
    except (SQLAlchemyError, OSError) as exc:  # a view must survive PostgreSQL being away
        return f"alerts: PostgreSQL unreachable ({type(getattr(exc, 'orig', None) or exc).__name__})"


def _seconds(value: float) -> str:
    if math.isnan(value):  # no observation in the window
        return "-"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def render(previous: Snapshot | None, current: Snapshot, alerts: str) -> RenderableType:
    """One frame: the engines table and a line with the history backlog and alerts."""
    elapsed = current.at - previous.at if previous else 0.0
    window = completions_delta(previous.completions if previous else None, current.completions)
    table = Table(title=f"engines at {time.strftime('%H:%M:%S')}")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("engine", "breaker") else "right")
    known = {c.engine for c in current.candidates}
    for candidate in current.candidates:
        engine = candidate.engine
        total, recent = current.completions.get(engine, Completions()), window.get(engine, Completions())
        # An engine first counted since the last frame did all its work in this window.
        before = previous.completions.get(engine, Completions()).completed if previous else None
        per_second = rate(before, total.completed, elapsed)
        ratio = failure_ratio(recent.failed, recent.completed)
        since = previous.runtime.get(candidate.task) if previous else None
        runtime = bucket_delta(since, current.runtime.get(candidate.task, []))
        table.add_row(
            engine,
            str(candidate.live_workers) if candidate.live_workers else "[red]0[/red]",
            f"{total.completed:.0f}",
            "-" if per_second is None else f"{per_second:.1f}",
            "-" if ratio is None else f"{ratio:.1%}",
            _seconds(histogram_quantile(0.95, runtime)),
            f"{candidate.depth}/{candidate.queue_size}",
            f"[{BREAKER_STYLE[candidate.breaker]}]{candidate.breaker.value}[/]",
        )
    for name in sorted(set(current.completions) - known):  # router refusals, maintenance jobs
        table.add_row(f"[dim]{name}[/dim]", "-", f"{current.completions[name].completed:.0f}", *["-"] * 5)
    footer = Text(f"history backlog: {current.backlog} records · {alerts}")
    return Group(table, footer)


def run(console: Console, interval: float, once: bool) -> None:
    """Print one frame (`once`) or refresh every `interval` seconds until Ctrl-C."""
    client = redis_client()
    current = take(client)
    if once:
        console.print(render(None, current, open_alerts()))
        return
    with Live(render(None, current, open_alerts()), console=console, auto_refresh=False) as live:
        try:
            while True:
                time.sleep(interval)
                try:
                    previous, current = current, take(client)
                    live.update(render(previous, current, open_alerts()), refresh=True)
                except redis.RedisError as exc:  # keep the view up; the next refresh may reach it
                    live.update(Text(f"Redis unreachable ({type(exc).__name__}), retrying"), refresh=True)
        except KeyboardInterrupt:
            pass
