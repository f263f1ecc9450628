"""`agents backup` and `agents restore`: the durable history (PostgreSQL) to a dump file and back."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from agents.errors import AgentsError
from agents.urls import masked

if TYPE_CHECKING:
    from db.backup import BackupReport

console = Console(width=None if sys.stdout.isatty() else 200)
_PATH = click.Path(dir_okay=False, path_type=Path)


@click.command()
@click.argument("path", type=_PATH)
def backup(path: Path) -> None:
    """Dump the PostgreSQL database (DATABASE_URL) to PATH with pg_dump (custom format)."""
    from db import backup as recovery

    try:
        report = recovery.backup(path)
    except AgentsError as exc:
        raise click.ClickException(str(exc)) from None
    _print(report, f"backed up {report.url} to {report.path}")


@click.command()
@click.argument("path", type=_PATH)
@click.option("--yes", is_flag=True, help="Confirm: the database's tables are replaced by the dump's.")
def restore(path: Path, yes: bool) -> None:
    """Replace the PostgreSQL database (DATABASE_URL) with the dump at PATH (pg_restore)."""
    from agents.settings import get_settings
    from db import backup as recovery

    url = masked(get_settings().database_url)
    if not yes:
        raise click.ClickException(
            f"restore replaces every table of {url} with the contents of {path}; "
            "stop the workers, history writer and beat, then run again with --yes"
        )
    try:
        report = recovery.restore(path)
    except AgentsError as exc:
        raise click.ClickException(str(exc)) from None
    _print(report, f"restored {report.path} into {report.url}")


def _print(report: BackupReport, headline: str) -> None:
    table = Table(title="rows per table")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in report.tables.items():
        table.add_row(name, str(count))
    console.print(table)
    size = f"{report.size_bytes / 1024:.1f} KiB"
    console.print(
        f"{headline} ({size}, {report.seconds:.1f}s), schema revision {report.revision or 'none'}",
        highlight=False,
    )
