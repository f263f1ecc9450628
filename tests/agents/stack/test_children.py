"""The local stack's supervisor: a child that refused its configuration is shown, not restarted."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rich.console import Console

from agents.stack.children import MAX_RESTARTS, Child, refusal

REFUSAL = (
    "worker w@h refused to start:\nMONITORING_THRESHOLDS is refused:\n  t.yml:7: thresholds.1.metric: bad"
)
REFUSING = f"import sys; print('booting', flush=True); print({REFUSAL!r}, file=sys.stderr); sys.exit(78)"


def test_a_refused_configuration_is_printed_once_and_never_restarted(tmp_path: Path) -> None:
    child = Child("intelligence", [sys.executable, "-c", REFUSING], tmp_path / "w.log", dict(os.environ))
    child.start()
    assert child.process is not None and child.process.wait(30) == os.EX_CONFIG
    console = Console(record=True, width=200)
    child.restart_if_dead(console)
    child.restart_if_dead(console)
    shown = console.export_text()
    assert shown.count("intelligence refused its configuration; not restarted") == 1
    assert "t.yml:7: thresholds.1.metric: bad" in shown and "booting" not in shown
    assert child.restarts == MAX_RESTARTS and not child.alive()


def test_refusal_is_the_last_refusal_in_the_log(tmp_path: Path) -> None:
    log = tmp_path / "w.log"
    log.write_text("old\nw refused to start:\nfirst\nrestarted\nw refused to start:\nsecond\n")
    assert refusal(log) == "w refused to start:\nsecond"
    assert refusal(tmp_path / "missing.log") == ""
