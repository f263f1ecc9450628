"""`agents loadtest` against the real fleet: a short run, every request accounted for."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.servers


def short_run(via: str, rate: int = 40, *extra: str) -> dict[str, Any]:
    """One second of load at `rate`; asserts the command succeeded and returns its JSON report."""
    command = [
        sys.executable,
        "-m",
        "agents.cli",
        "loadtest",
        "--rate",
        str(rate),
        "--duration",
        "1",
        "--via",
        via,
    ]
    done = subprocess.run(
        [*command, *extra, "--json", "--drain-timeout", "60"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout))


@pytest.mark.parametrize("via", ["route", "direct"])
def test_short_run_loses_nothing(fleet: str, via: str, tmp_path: Path) -> None:
    report = short_run(via, 40, "--plot", str(tmp_path / "run.png"))
    assert (tmp_path / "run.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (report["sent"], report["succeeded"], report["lost"]) == (40, 40, 0)
    assert 0 < report["p50_ms"] <= report["p95_ms"] <= report["p99_ms"] <= report["max_ms"]
