"""`agents worker NAME` for a seed-style custom engine: discovery, routing, expiry."""

from __future__ import annotations

import signal
import sys
import time

import pytest

from agents.errors import NoLiveEngine
from agents.worker import worker_argv
from tests.conftest import spawn_worker, stop_worker, wait_for_engines

pytestmark = pytest.mark.servers
AGENTS = [sys.executable, "-m", "agents.cli"]


def test_worker_command_line_carries_the_engine_config() -> None:
    argv = worker_argv("flaky", ["--without-mingle"])
    joined = " ".join(argv)
    assert "--queues flaky --hostname flaky@%h --concurrency 2 --pool prefork" in joined
    assert "--soft-time-limit 2 --time-limit 3" in joined
    assert argv[-1] == "--without-mingle"


def test_batch_workers_reserve_two_batches_the_others_one_message() -> None:
    def prefetch(name: str) -> int:
        argv = worker_argv(name)
        return int(argv[argv.index("--prefetch-multiplier") + 1])

    assert prefetch("flaky") == 1  # WORKER_PREFETCH_MULTIPLIER
    assert prefetch("batchy") == 2 * 20  # batch_size 20, one process
    assert prefetch("analysis") == 2 * 100 // 2  # batch_size 100, two processes
    assert prefetch("intelligence") == 2 * 200 // 2  # hosts the router: ROUTE_FLUSH_EVERY 200


def test_unknown_engine_is_a_clear_cli_error(redis_server) -> None:
    import subprocess

    from tests.conftest import ROOT

    done = subprocess.run([*AGENTS, "worker", "nope"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "no engine named 'nope'" in done.stderr


def test_custom_engine_is_discovered_routed_and_expires(fleet: str, redis_client) -> None:
    from agents.connections import registry
    from tasks import route

    # Given the seed's MyEngine, registered with AGENT_ENGINES and started with `agents worker`
    worker = spawn_worker([*AGENTS, "worker", "my_engine"], "my_engine")
    try:
        wait_for_engines({"my_engine"})
        [host] = registry().live_workers()["my_engine"]
        assert host.startswith("my_engine@")
        # When a request asks for its own capability, it runs there under the router's task id
        result = route.delay({"capability": "processing", "payload": {"x": 1}})
        assert result.get(timeout=20) == {"status": "success", "engine": "my_engine", "task_id": result.id}
    finally:
        # Then a crashed worker (no clean withdraw) drops out once its heartbeat expires
        stop_worker(worker, signal.SIGKILL)
    assert "my_engine" in registry().live_workers()
    time.sleep(2.5)  # HEARTBEAT_TTL_SECONDS=2 in the tests
    assert "my_engine" not in registry().live_workers()
    with pytest.raises(NoLiveEngine, match="my_engine"):
        route.delay({"capability": "processing"}).get(timeout=20)


def test_clean_shutdown_withdraws_at_once(fleet: str, redis_client) -> None:
    from agents.connections import registry

    worker = spawn_worker([*AGENTS, "worker", "my_engine"], "my_engine")
    try:
        wait_for_engines({"my_engine"})
    finally:
        stop_worker(worker, signal.SIGTERM)
    assert "my_engine" not in registry().live_workers()
