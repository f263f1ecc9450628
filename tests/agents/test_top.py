"""`agents top`: a frame from two snapshots, the alerts line, and `--once` against the real fleet.
The arithmetic itself is tested in tests/agents/telemetry/test_rates.py."""

from __future__ import annotations

import subprocess
import sys
from io import StringIO

import pytest
from rich.console import Console
from sqlalchemy import create_engine

from agents.routing.decision import BreakerState, Candidate
from agents.stack.servers import free_port
from agents.telemetry.rates import Completions
from agents.top import Snapshot, open_alerts, render
from tests.conftest import ROOT, wait_for_history


def text_of(renderable: object) -> str:
    console = Console(file=StringIO(), width=200, color_system=None)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def row(frame: str, engine: str) -> list[str]:
    """The cells of one engine's line of the table."""
    (line,) = [line for line in frame.splitlines() if line.startswith(f"│ {engine} ")]
    return [cell.strip() for cell in line.strip("│").split("│")]


def snapshot(at: float, completed: float, failed: float, runtime: list[tuple[float, float]]) -> Snapshot:
    analysis = Candidate("analysis", frozenset({"analysis"}), 100, live_workers=2, depth=7)
    return Snapshot(
        at=at,
        completions={"analysis": Completions(completed, failed), "maintenance": Completions(4.0, 0.0)},
        runtime={analysis.task: runtime},
        candidates=[analysis, Candidate("idle", frozenset({"x"}), 10, breaker=BreakerState.OPEN)],
        backlog=12,
    )


def test_frames_show_rates_between_refreshes() -> None:
    inf = float("inf")
    first = snapshot(100.0, 10.0, 0.0, [(0.01, 10.0), (0.1, 10.0), (inf, 10.0)])
    second = snapshot(102.0, 30.0, 5.0, [(0.01, 10.0), (0.1, 30.0), (inf, 30.0)])
    opening = text_of(render(None, first, "alerts: 0 open"))
    assert row(opening, "analysis") == ["analysis", "2", "10", "-", "0.0%", "9.5 ms", "7/100", "closed"]
    assert row(opening, "idle") == ["idle", "0", "0", "-", "-", "-", "0/10", "open"]
    assert row(opening, "maintenance")[:3] == ["maintenance", "-", "4"]  # counted, but no card
    assert "history backlog: 12 records · alerts: 0 open" in opening
    # 20 completed in 2 s, 5 of them failed, all 20 runtimes in (0.01, 0.1]: p95 interpolated there.
    later = row(text_of(render(first, second, "alerts: 0 open")), "analysis")
    assert later[2:6] == ["30", "10.0", "25.0%", "95.5 ms"]


def test_alerts_line_survives_an_unreachable_postgres() -> None:
    nowhere = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/agents")
    assert open_alerts(nowhere) == "alerts: PostgreSQL unreachable (OperationalError)"


@pytest.mark.servers
def test_once_shows_live_workers_and_completions(fleet: str, redis_client: object) -> None:
    from tasks import route

    def analysis_row() -> list[str]:
        command = [sys.executable, "-m", "agents.cli", "top", "--once"]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "history backlog:" in done.stdout and "alerts: 0 open" in done.stdout
        return row(done.stdout, "analysis")

    before = int(analysis_row()[2])
    results = [route.delay({"capability": "analysis", "payload": {"data": [1, 2]}}) for _ in range(3)]
    assert [r.get(timeout=30)["count"] for r in results] == [2, 2, 2]
    wait_for_history([r.id for r in results])  # counted in the same round trip as the history
    cells = analysis_row()
    assert int(cells[1]) >= 1  # live workers
    assert int(cells[2]) >= before + 3  # completed
    assert cells[5].endswith(("ms", " s"))  # a p95 runtime, not "-"
    assert cells[7] == "closed"
