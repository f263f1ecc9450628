"""`agents migrate`, `agents doctor` and `agents tasks ...`: the durable history from the shell."""

from __future__ import annotations

import json
import re
import sys
import textwrap
from datetime import timedelta

import click
from rich.console import Console
from rich.table import Table

from agents.monitoring.insights import KINDS

console = Console(width=None if sys.stdout.isatty() else 200)
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(value: str) -> timedelta:
    """`90s`, `15m`, `1h`, `7d` → timedelta; anything else is a clear error."""
    match = _DURATION.match(value.strip())
    if not match:
        raise click.BadParameter(f"{value!r} is not a duration like 30m, 1h or 7d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@click.command()
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@click.option("--down", is_flag=True, help="Downgrade to --revision (e.g. base) instead.")
def migrate(revision: str, down: bool) -> None:
    """Apply the database migrations (Alembic)."""
    from db import migrate as migrations

    if down:
        migrations.downgrade(revision)
    else:
        migrations.upgrade(revision)
    console.print(f"database at revision {migrations.current() or 'base (empty)'}")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def doctor(as_json: bool) -> None:
    """The daily health checks; exits non-zero when something is unhealthy."""
    from agents.doctor import as_report, run_checks
    from agents.settings import get_settings
    from tasks import app

    checks = run_checks(get_settings(), ping=lambda: app.control.ping(timeout=2.0))
    if as_json:
        click.echo(json.dumps(as_report(checks), default=str))
    else:
        for check in checks:
            mark = "[green]ok[/green]  " if check.ok else "[red]FAIL[/red]"
            console.print(f"{mark} {check.name:<9} {check.detail}", highlight=False)
            for error, count in check.data.get("recent_errors", []):
                console.print(f"       {count:>5} x {error}", highlight=False, markup=False)
            for problem in check.data.get("problems", []):  # configuration: file, line and field
                console.print(textwrap.indent(problem, "       "), highlight=False, markup=False)
    if not all(c.ok for c in checks):
        sys.exit(1)


@click.group(name="tasks")
def tasks_group() -> None:
    """Task history in PostgreSQL."""


@tasks_group.command()
@click.option("--since", default="1h", show_default=True, help="Window, e.g. 30m, 1h, 7d.")
def stats(since: str) -> None:
    """Tasks by status and by task type created in the window."""
    from db import history

    window = parse_duration(since)
    table = Table(title=f"tasks created in the last {since}")
    table.add_column("status")
    table.add_column("count", justify="right")
    for status, count in sorted(history.status_counts(window).items()):
        table.add_row(status, str(count))
    console.print(table)
    types = Table(title="by task type")
    types.add_column("task_type")
    types.add_column("count", justify="right")
    for task_type, count in history.task_type_counts(window):
        types.add_row(task_type, str(count))
    console.print(types)


@tasks_group.command()
@click.option("--older-than", default="30m", show_default=True, help="Processing for longer than this.")
def stuck(older_than: str) -> None:
    """Tasks still processing that started longer ago than --older-than."""
    from db import history

    rows = history.stuck(parse_duration(older_than))
    table = Table(title=f"processing for more than {older_than}")
    for column in ("task_id", "task_name", "engine", "worker", "started_at"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.task_id, row.task_name or "", row.engine or "", row.worker or "", f"{row.started_at}"
        )
    console.print(table)
    console.print(f"{len(rows)} stuck task(s)")


@tasks_group.command()
@click.argument("task_id")
def show(task_id: str) -> None:
    """Everything recorded about one task."""
    from db import history

    row = history.get(task_id)
    if row is None:
        raise click.ClickException(f"no task {task_id!r} in task_results")
    click.echo(json.dumps(row, default=str, indent=2))


@click.command()
@click.option("--open", "open_only", is_flag=True, help="Only alerts not resolved yet.")
@click.option("--limit", default=50, show_default=True, help="Newest first, at most this many.")
def alerts(open_only: bool, limit: int) -> None:
    """Alerts of the performance engine's monitor (the `alerts` table)."""
    from db.alerts import list_alerts

    table = Table(title="open alerts" if open_only else "alerts")
    for column in ("id", "fired", "resolved", "alert", "subject", "severity", "message"):
        table.add_column(column)
    for row in list_alerts(open_only=open_only, limit=limit):
        resolved = row["resolved_at"].strftime("%Y-%m-%d %H:%M:%S") if row["resolved_at"] else "open"
        table.add_row(
            str(row["id"]), row["created_at"].strftime("%Y-%m-%d %H:%M:%S"), resolved, row["name"],
            str(row["engine"]), row["severity"], row["message"],
        )  # fmt: skip
    console.print(table)


@click.command()
@click.option("--limit", default=50, show_default=True, help="Newest first, at most this many.")
def actions(limit: int) -> None:
    """What the optimization engine did (the `optimization_actions` table) and whether it helped."""
    from db.actions import list_actions

    table = Table(title="optimization actions")
    for column in (
        "id",
        "applied",
        "engine",
        "rule",
        "action",
        "params",
        "status",
        "before",
        "after",
        "verdict",
    ):
        table.add_column(column)
    for row in list_actions(limit=limit):
        applied = row["applied_at"].strftime("%Y-%m-%d %H:%M:%S") if row["applied_at"] else "-"
        table.add_row(
            str(row["id"]), applied, str(row["engine"]), str(row["rule"]), row["action"],
            json.dumps(row["params"]), row["status"], _value(row["before"]), _value(row["after"]),
            row["verdict"] or "-",
        )  # fmt: skip
    console.print(table)


@click.command()
@click.option("--limit", default=50, show_default=True, help="Newest first, at most this many.")
@click.option("--kind", type=click.Choice(KINDS), help="Only insights of this kind.")
def insights(limit: int, kind: str | None) -> None:
    """What the analysis engine found in the history (the `insights` table)."""
    from db.insights import list_insights

    table = Table(title=f"{kind} insights" if kind else "insights")
    for column in ("id", "found", "kind", "subject", "severity", "summary"):
        table.add_column(column)
    for row in list_insights(limit=limit, kind=kind):
        table.add_row(
            str(row["id"]), row["created_at"].strftime("%Y-%m-%d %H:%M:%S"), row["kind"],
            str(row["subject"]), row["severity"], row["summary"],
        )  # fmt: skip
    console.print(table)


def _value(measured: dict[str, object] | None) -> str:
    return f"{measured['metric']}={measured['value']}" if measured else "-"
