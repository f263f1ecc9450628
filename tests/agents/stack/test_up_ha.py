"""`agents up --ha` (what `make run-ha` runs): Redis with Sentinel, a 3-node NATS cluster and a
PostgreSQL standby come up with the platform, which works through them and stops cleanly."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import psutil
import pytest

from agents.stack.servers import free_port
from tests.agents.stack.test_up import ENGINES, stack_env, wait_for_line
from tests.conftest import ROOT

pytestmark = pytest.mark.servers


def run(argv: list[str], env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.timeout(400)
def test_up_ha_starts_the_topology_and_the_platform_works_through_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = stack_env(home) | {"FLOWER_PORT": str(free_port())}
    out = tmp_path / "up.out"
    with open(out, "wb") as sink:
        up = subprocess.Popen(
            [str(Path(sys.executable).parent / "agents"), "up", "--ha"],
            cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    descendants: list[psutil.Process] = []
    try:
        printed = wait_for_line(out, "Ctrl-C stops everything", up, timeout=240)
        assert "healthy: redis ok, postgres ok, nats ok, flower ok, workers 4/4" in printed
        settings = dict(line.split("=", 1) for line in (home / "stack.env").read_text().splitlines())
        assert settings["REDIS_URL"].count("sentinel://") == 3
        assert settings["NATS_URL"].count("nats://") == 3 and settings["NATS_STREAM_REPLICAS"] == "3"
        assert settings["DATABASE_URL"].endswith("?target_session_attrs=read-write")
        password = settings["REDIS_SENTINEL_PASSWORD"]
        # Each server is listed with its pid and log; the password is never printed.
        servers = r"^  (redis|sentinel|nats|postgres) +\w+://.* pid \d+"
        listed = Counter(m.group(1) for m in re.finditer(servers, printed, re.M))
        assert listed == {"redis": 2, "sentinel": 3, "nats": 3, "postgres": 2}, printed
        assert password not in printed

        client = stack_env(home)
        code = (
            "from tasks import route; "
            'request = {"capability": "analysis", "payload": {"data": [1, 2, 3, 50]}}; '
            'print(route.delay(request).get(timeout=30)["max"])'
        )
        routed = run([sys.executable, "-c", code], client)
        assert routed.stdout.strip() == "50.0", routed.stderr[-3000:]
        # The stock celery CLI reaches the workers through the Sentinels too.
        ping = run(
            [sys.executable, "-m", "celery", "-A", "tasks", "inspect", "ping", "--json", "--timeout", "5"],
            client,
        )
        assert {node.split("@")[0] for node in json.loads(ping.stdout)} == ENGINES, ping.stderr[-3000:]
        doctor = run([sys.executable, "-m", "agents.cli", "doctor"], client)
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        # The bridge made its stream with three replicas on the cluster.
        wait_for_line(home / "logs" / "bridge.log", "bridge_started", up, timeout=60)
        streams = run([sys.executable, "-c", STREAM_REPLICAS], client)
        assert streams.stdout.splitlines()[0] == "3", streams.stdout + streams.stderr[-3000:]
        descendants = psutil.Process(up.pid).children(recursive=True)
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=120)
    assert up.returncode == 0, out.read_text()
    assert "stopped; no process left running." in out.read_text()
    left = [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert left == [], [p.cmdline() for p in left]
    logs = [*(home / "logs").glob("*.log"), *(home / "ha").rglob("*.log")]
    assert [log.name for log in logs if password in log.read_text(errors="replace")] == []


# The bridge stream's replica count, read through a client given every node.
STREAM_REPLICAS = """
import asyncio
from agents.nats_client import connect
from agents.settings import get_settings

async def main():
    client = await connect("test-ha")
    info = await client.jetstream().stream_info(get_settings().bridge_stream)
    print(info.config.num_replicas)
    await client.close()

asyncio.run(main())
"""


def test_up_ha_refuses_server_urls_from_the_environment(tmp_path: Path) -> None:
    env = stack_env(tmp_path / "home") | {"REDIS_URL": "redis://127.0.0.1:6379/0"}
    done = run([str(Path(sys.executable).parent / "agents"), "up", "--ha"], env, timeout=60)
    assert done.returncode == 1
    assert "agents up --ha starts its own servers; unset REDIS_URL" in done.stdout
