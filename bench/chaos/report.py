"""The chaos table: printed with rich, and written as markdown to docs/reliability.md."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.chaos.ledger import RECOVERY_LIMIT_SECONDS, Verdict

COLUMNS = (
    "scenario", "faults", "sent", "refused at publish", "succeeded", "failed (reason)", "lost",
    "ran again (in flight)", "duplicated", "left in Redis", "recovery s", "ok",
)  # fmt: skip


def cells(v: Verdict) -> list[str]:
    failed = ", ".join(f"{n} {reason}" for reason, n in sorted(v.failed.items())) or "0"
    recovery = "-" if v.recovery_seconds is None else f"{v.recovery_seconds:.1f}"
    refused = ", ".join(f"{n} {reason}" for reason, n in sorted(v.refused.items())) or "0"
    return [
        v.scenario, str(v.faults), str(v.sent), refused, str(v.succeeded), failed, str(v.lost), str(v.rerun),
        str(v.duplicated), str(v.leftovers), recovery, verdict(v),
    ]  # fmt: skip


def verdict(v: Verdict) -> str:
    """yes, NO (with what a scenario's own checks found), or skipped with why: never a pass."""
    if v.skipped:
        return f"skipped: {v.skipped}"
    if v.ok:
        return "yes"
    return "NO" + "".join(f"; {problem}" for problem in v.problems)


def print_table(verdicts: Sequence[Verdict]) -> None:
    table = Table(title="make chaos")
    for column in COLUMNS:
        table.add_column(column)
    for verdict in verdicts:
        table.add_row(*cells(verdict))
    Console(width=200).print(table)


def markdown(verdicts: Sequence[Verdict], header: str) -> str:
    lines = [header, "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cells(v)) + " |" for v in verdicts]
    lines += [
        "",
        f"ok: nothing lost, nothing ran twice unless a fault caught it in flight, nothing left queued "
        f"or unacked, the scenario's own checks held (else NO with what failed), and every fault "
        f"recovered within {RECOVERY_LIMIT_SECONDS:.0f} s. skipped: the scenario cannot run on this "
        f"machine (no pass). A failover of asynchronous replication (redis-failover) reports what it "
        f"lost without failing on it: that loss is the figure the drill measures.",
    ]
    return "\n".join(lines) + "\n"


def write_section(path: Path, verdicts: Sequence[Verdict], header: str, section: str = "chaos") -> None:
    """Replace the generated `section` of `path` (between its markers) with this run's table."""
    begin, end = f"<!-- {section}:begin -->", f"<!-- {section}:end -->"
    text = path.read_text() if path.exists() else f"{begin}\n{end}\n"
    if begin not in text:
        text += f"\n{begin}\n{end}\n"
    before, rest = text.split(begin, 1)
    after = rest.split(end, 1)[1]
    path.write_text(f"{before}{begin}\n{markdown(verdicts, header)}{end}{after}")
