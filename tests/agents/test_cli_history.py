"""`agents doctor`, `agents tasks ...` and `agents migrate` against real servers."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT, wait_for_history

pytestmark = pytest.mark.servers


def agents(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "agents.cli", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=90)


def test_doctor_reports_each_check_and_fails_on_a_missing_worker(fleet: str, nats_server) -> None:
    done = agents("doctor")
    assert done.returncode == 1, done.stdout + done.stderr
    for name in ("workers", "database", "nats", "redis", "tasks", "configuration"):
        assert name in done.stdout
    assert re.search(r"no worker for [a-z_, ]*my_engine", done.stdout), done.stdout
    report = json.loads(agents("doctor", "--json").stdout)
    assert report["healthy"] is False
    assert {c["name"]: c["ok"] for c in report["checks"]}["database"] is True


def test_doctor_names_the_line_and_field_of_a_bad_rules_file(fleet: str, nats_server, tmp_path) -> None:
    import os

    bad = tmp_path / "rules.yml"
    bad.write_text(
        'rules:\n  - name: A\n    metric: queue_depth\n    comparison: ">"\n    value: 1\n    action: nap\n'
    )
    command = [sys.executable, "-m", "agents.cli", "doctor"]
    env = os.environ | {"OPTIMIZATION_RULES": str(bad)}
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=90, env=env)
    assert done.returncode == 1
    assert re.search(r"FAIL configuration .*OPTIMIZATION_RULES refused", done.stdout), done.stdout
    assert f"{bad}:6: rules.0.action: Input should be" in done.stdout


def test_tasks_stats_show_and_stuck(fleet: str, redis_client) -> None:
    from tasks import route

    result = route.delay({"capability": "analysis", "task_type": "cli-check", "payload": {"data": [1]}})
    result.get(timeout=20)
    wait_for_history([result.id])
    stats = agents("tasks", "stats", "--since", "1h")
    assert stats.returncode == 0, stats.stderr
    assert "success" in stats.stdout and "cli-check" in stats.stdout
    shown = agents("tasks", "show", result.id)
    assert json.loads(shown.stdout)["status"] == "success"
    assert agents("tasks", "show", "no-such-id").returncode == 1
    stuck = agents("tasks", "stuck", "--older-than", "30m")
    assert stuck.returncode == 0 and "stuck task(s)" in stuck.stdout


def test_bad_duration_is_named(postgres_server) -> None:
    done = agents("tasks", "stats", "--since", "soon")
    assert done.returncode == 2
    assert "'soon' is not a duration like 30m, 1h or 7d" in done.stderr


def test_migrate_reports_the_revision(postgres_server) -> None:
    done = agents("migrate")
    assert done.returncode == 0, done.stderr
    assert f"database at revision {head_revision()}" in done.stdout


def head_revision() -> str:
    """The newest migration's revision (files are named by revision: 0003_...)."""
    from alembic.script import ScriptDirectory

    from db.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head
