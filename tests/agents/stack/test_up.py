"""`agents up` (what `make run` runs): the whole platform comes up, works, and stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from agents.stack.health import flower_request
from agents.stack.servers import free_port
from tests.conftest import ROOT

pytestmark = pytest.mark.servers
ENGINES = {"intelligence", "performance", "optimization", "analysis"}


def stack_env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"REDIS_URL", "DATABASE_URL", "NATS_URL", "AGENT_ENGINES"}
    }
    env["AGENTS_HOME"] = str(home)
    return env


def wait_for_line(path: Path, marker: str, process: subprocess.Popen[bytes], timeout: float = 150) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        if marker in text:
            return text
        assert process.poll() is None, f"agents up exited early:\n{text}"
        time.sleep(0.5)
    raise TimeoutError(f"{marker!r} not printed in {timeout}s:\n{path.read_text(errors='replace')}")


def test_up_serves_requests_and_ctrl_c_leaves_nothing_behind(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = stack_env(home) | {"FLOWER_PORT": str(free_port())}
    out = tmp_path / "up.out"
    with open(out, "wb") as sink:
        up = subprocess.Popen(
            # The console script, as `make run` calls it: it must import without the repo on sys.path.
            [str(Path(sys.executable).parent / "agents"), "up"],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    descendants: list[psutil.Process] = []
    try:
        printed = wait_for_line(out, "Ctrl-C stops everything", up)
        assert "healthy: redis ok, postgres ok, nats ok, flower ok, workers 4/4" in printed
        assert "route.delay(" in printed
        urls = dict(line.split("=", 1) for line in (home / "stack.env").read_text().splitlines())
        assert set(urls) >= {"REDIS_URL", "DATABASE_URL", "NATS_URL", "FLOWER_URL", "FLOWER_BASIC_AUTH"}
        # No FLOWER_BASIC_AUTH in the environment: a fresh admin password, shown once on the console.
        user, _, password = urls["FLOWER_BASIC_AUTH"].partition(":")
        assert user == "admin" and len(password) >= 20
        assert f"flower login: user admin, password {password}" in printed

        # Another terminal: no exports, the settings find the stack through .agents/stack.env.
        client_env = stack_env(home)
        code = (
            "from tasks import route; "
            'result = route.delay({"capability": "analysis", "payload": {"data": [1, 2, 3, 50]}}); '
            'print(result.get(timeout=20)["max"])'
        )
        routed = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=client_env, capture_output=True, text=True, timeout=60
        )
        assert routed.stdout.strip() == "50.0", routed.stderr

        ping = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "tasks", "inspect", "ping", "--json", "--timeout", "5"],
            cwd=ROOT,
            env=client_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        answered = {node.split("@")[0] for node in json.loads(ping.stdout)}
        assert answered == ENGINES, ping.stderr

        api_workers = f"{urls['FLOWER_URL']}/api/workers?refresh=1"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(api_workers, timeout=20)
        assert refused.value.code == 401
        refused.value.close()
        request = flower_request(api_workers, urls["FLOWER_BASIC_AUTH"])
        with urllib.request.urlopen(request, timeout=20) as response:
            flower_workers = {node.split("@")[0] for node in json.load(response)}
        assert flower_workers == ENGINES

        # The exporter serves the platform's metrics; each worker has its health URL.
        assert {f"HEALTH_URL_{engine.upper()}" for engine in ENGINES} <= set(urls)
        with urllib.request.urlopen(f"{urls['EXPORTER_URL']}/metrics", timeout=20) as response:
            scraped = response.read().decode()
        workers_up = {
            line.split('"')[1].split("@")[0]
            for line in scraped.splitlines()
            if line.startswith("celery_worker_up{")
        }
        assert workers_up == ENGINES

        # The daily checks pass on a fresh stack: migrations ran, every engine has a worker.
        doctor = subprocess.run(
            [sys.executable, "-m", "agents.cli", "doctor"],
            cwd=ROOT,
            env=client_env,
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr

        # The NATS bridge runs as one more child and has set up its stream.
        assert "NATS events" in printed
        wait_for_line(home / "logs" / "bridge.log", "bridge_started", up, timeout=30)

        descendants = psutil.Process(up.pid).children(recursive=True)
        # 3 servers, 4 workers (+ pool children), beat, flower, bridge, history writer, exporter
        assert len(descendants) >= 12
    finally:
        # Ctrl-C: SIGINT to `agents up` alone (its children run in their own sessions).
        up.send_signal(signal.SIGINT)
        up.wait(timeout=90)
    assert up.returncode == 0, out.read_text()
    assert "stopped; no process left running." in out.read_text()
    left = [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert left == [], [p.cmdline() for p in left]
    assert not (home / "stack.env").exists()
    # Flower saved its state on the way out (dbm adds suffixes), for the next `agents up`.
    assert list(home.glob("flower.db*")), sorted(p.name for p in home.iterdir())
    # The password went to the console only, never to a log file.
    logs = (home / "logs").glob("*.log")
    assert [log.name for log in logs if password in log.read_text(errors="replace")] == []


def test_up_refuses_a_bad_thresholds_file_before_starting_anything(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        'thresholds:\n  - name: A\n    metric: queue_depth\n    comparison: ">"\n    value: lots\n'
    )
    home = tmp_path / "home"
    env = stack_env(home) | {"MONITORING_THRESHOLDS": str(bad)}
    up = subprocess.run(
        [sys.executable, "-m", "agents.cli", "up"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert up.returncode == 1, up.stdout + up.stderr
    assert "the monitoring configuration is refused" in up.stdout
    assert f"{bad}:5: thresholds.0.value: Input should be a valid number" in up.stdout
    assert not (home / "stack.pid").exists() and not (home / "redis").exists()  # nothing started
