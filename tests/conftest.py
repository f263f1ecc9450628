"""Shared fixtures: real servers started once per session on free ports, and real workers.

The environment is set before anything imports `tasks`, because the settings (and so the
Celery app) are read once per process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.stack.servers import ServerProcess, free_port, restart, start_nats, start_postgres, start_redis

ROOT = Path(__file__).resolve().parent.parent
SESSION_HOME = Path(tempfile.mkdtemp(prefix="agents-test-"))
REDIS_PORT = free_port()
POSTGRES_PORT = free_port()
NATS_PORT = free_port()
TEST_ENGINES = (
    "tests.engines:engine,tests.engines:FlakyEngine,tests.engines:CounterEngine,tests.engines:BatchEngine"
)
FLEET_QUEUES = "intelligence,performance,optimization,analysis,flaky,counter,maintenance"

TEST_ENV = {
    "AGENTS_HOME": str(SESSION_HOME),
    "REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}/0",
    "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{POSTGRES_PORT}/agents",
    "NATS_URL": f"nats://127.0.0.1:{NATS_PORT}",
    "HISTORY_FLUSH_INTERVAL_SECONDS": "0.2",
    "AGENT_ENGINES": TEST_ENGINES,
    "HEARTBEAT_INTERVAL_SECONDS": "0.5",
    "HEARTBEAT_TTL_SECONDS": "2",
    "BREAKER_FAILURE_THRESHOLD": "3",
    "BREAKER_RESET_TIMEOUT_SECONDS": "2",
    "SOFT_TIME_LIMIT_MARGIN_SECONDS": "1",
    "LOG_LEVEL": "INFO",
    # A maintainer's hook, registered as any extra hook is: it sees every request on every path.
    "AGENT_HOOKS": "tests.hooks:ProbeHook",
    # Poison tests: a message that came back more than 3 times fails instead of running again.
    "TASK_MAX_DELIVERIES": "3",
    # No worker binds the default health port 8080 (workers would clash); the health tests give
    # their worker a free port through spawn_worker's env.
    "HEALTH_PORT": "0",
}
os.environ.update(TEST_ENV)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "servers: needs real servers and workers")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[ServerProcess]:
    """One real Redis for the session (append-only, noeviction, as in production)."""
    server = start_redis(SESSION_HOME / "redis", REDIS_PORT)
    yield server
    server.stop()


# Servers by name; outage tests replace an entry when they restart a server.
RUNNING: dict[str, ServerProcess] = {}


def restart_server(name: str, down_seconds: float = 0.0) -> ServerProcess:
    """Stop a session server, leave it down a while, start it again on the same port and data."""
    server = RUNNING[name]
    server.stop()
    time.sleep(down_seconds)
    RUNNING[name] = restart(server)
    return RUNNING[name]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[ServerProcess]:
    """One real PostgreSQL for the session, migrated to the newest schema."""
    from db.migrate import upgrade

    RUNNING["postgres"] = start_postgres(SESSION_HOME / "postgres", POSTGRES_PORT)
    upgrade("head")
    yield RUNNING["postgres"]
    from db.session import reset_engine

    reset_engine()
    RUNNING["postgres"].stop()


@pytest.fixture(scope="session")
def nats_server() -> Iterator[ServerProcess]:
    """One real NATS with JetStream for the session; restart it with `servers.restart`."""
    server = start_nats(SESSION_HOME / "nats", NATS_PORT)
    yield server
    server.stop()


@pytest.fixture()
def redis_client(redis_server: ServerProcess):
    """The platform's Redis client, with platform keys (not queues) wiped between tests."""
    from agents.connections import redis_client as client

    yield client()
    for key in client().scan_iter("agents:*"):
        if not key.startswith(b"agents:workers") and not key.startswith(b"agents:engines"):
            client().delete(key)


def spawn_worker(argv: list[str], log_name: str, **env: str) -> subprocess.Popen[bytes]:
    """A real worker process in its own session, logging to the session folder."""
    log = open(SESSION_HOME / f"{log_name}.log", "ab")  # noqa: SIM115 - lives as long as the worker
    return subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=os.environ | env, start_new_session=True
    )


def wait_for_engines(names: set[str], timeout: float = 30.0) -> None:
    """Block until every engine in `names` has a live heartbeat."""
    from agents.connections import registry

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if names <= set(registry().live_workers()):
            return
        time.sleep(0.2)
    raise TimeoutError(f"engines {sorted(names)} sent no heartbeat within {timeout}s")


def stop_worker(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    """Warm shutdown (SIGTERM) or crash (SIGKILL) of a worker and its pool children."""
    if process.poll() is None:
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="session")
def fleet(redis_server: ServerProcess, postgres_server: ServerProcess) -> Iterator[str]:
    """One prefork worker serving the built-in engines and the flaky test engine."""
    node = f"fleet-{os.getpid()}@localhost"
    argv = [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-Q", FLEET_QUEUES,
            "-n", node, "-c", "2", "-P", "prefork", "--loglevel", "INFO"]  # fmt: skip
    process = spawn_worker(argv, "fleet")
    # The history writer runs as its own process, as `make run` and k8s deploy it.
    writer = spawn_worker([sys.executable, "-m", "agents.cli", "history-writer"], "history-writer")
    try:
        wait_for_engines({"intelligence", "performance", "optimization", "analysis", "flaky", "counter"})
        yield node
    finally:
        stop_worker(process)
        stop_worker(writer)


@pytest.fixture(scope="session")
def batch_worker(fleet: str) -> Iterator[None]:
    """The `batchy` test engine (batch_size 20) started as `agents worker batchy` starts it."""
    process = spawn_worker([sys.executable, "-m", "agents.cli", "worker", "batchy"], "batchy")
    try:
        wait_for_engines({"batchy"})
        yield
    finally:
        stop_worker(process)


@pytest.fixture(scope="session")
def late_worker(fleet: str) -> Iterator[None]:
    """`agents worker late` for an engine that only this worker's AGENT_ENGINES names."""
    argv = [sys.executable, "-m", "agents.cli", "worker", "late"]
    process = spawn_worker(argv, "late", AGENT_ENGINES=f"{TEST_ENGINES},tests.late_engine:LateEngine")
    try:
        wait_for_engines({"late"})
        yield
    finally:
        stop_worker(process)


@pytest.fixture(scope="session")
def demo_workers(fleet: str) -> Iterator[tuple[str, str]]:
    """`agents worker demo_blue` and `agents worker demo_green`: two tunable engines (agents faults)
    serving the `demo` capability, as `agents demo` starts them."""
    from agents.engines.tunable import DEMO_ENGINES

    names = ("demo_blue", "demo_green")
    engines = f"{TEST_ENGINES},{','.join(DEMO_ENGINES)}"
    processes = [
        spawn_worker([sys.executable, "-m", "agents.cli", "worker", name], name, AGENT_ENGINES=engines)
        for name in names
    ]
    try:
        wait_for_engines(set(names))
        yield names
    finally:
        for process in processes:
            stop_worker(process)


OUTCOME_EVENTS = ("task-succeeded", "task-failed", "task-retried", "task-revoked")
FINAL_EVENTS = ("task-succeeded", "task-failed", "task-revoked")


class TaskEvents:
    """Every task event the workers send (what Flower sees), collected by a real receiver."""

    def __init__(self) -> None:
        self.by_task: dict[str, list[str]] = {}
        self.receiver: Any = None

    def on_event(self, event: dict[str, Any]) -> None:
        if "uuid" in event:
            self.by_task.setdefault(event["uuid"], []).append(event["type"])

    def types(self, task_id: str, timeout: float = 15.0) -> list[str]:
        """The outcome events of one task, in order, once its final one arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = [t for t in self.by_task.get(task_id, []) if t in OUTCOME_EVENTS]
            if seen and seen[-1] in FINAL_EVENTS:
                return seen
            time.sleep(0.1)
        seen_all = self.by_task.get(task_id)
        raise TimeoutError(f"no final task event for {task_id} within {timeout}s: {seen_all}")

    def outcome(self, task_id: str) -> str:
        """The final outcome event of one task."""
        return self.types(task_id)[-1]


@pytest.fixture(scope="session")
def task_events(fleet: str) -> Iterator[TaskEvents]:
    """A real event receiver (Flower's way of seeing tasks), listening for the whole session."""
    import threading

    from tasks import app

    events = TaskEvents()
    connection = app.connection_for_read()
    events.receiver = app.events.Receiver(connection, handlers={"*": events.on_event})
    listener = threading.Thread(target=events.receiver.capture, kwargs={"wakeup": False}, daemon=True)
    listener.start()
    time.sleep(1)  # the receiver's queue is bound before anything is sent
    yield events
    events.receiver.should_stop = True
    connection.release()


def wait_for_history(task_ids: list[str], statuses: set[str] | None = None, timeout: float = 30.0) -> dict:
    """Block until every task id has a task_results row in one of `statuses` (default: final)."""
    from agents.statuses import FINAL_STATUSES
    from db import history

    wanted = statuses or set(FINAL_STATUSES)
    deadline = time.monotonic() + timeout
    rows: dict = {}
    while time.monotonic() < deadline:
        rows = {tid: history.get(tid) for tid in task_ids}
        if all(row and row["status"] in wanted for row in rows.values()):
            return rows
        time.sleep(0.2)
    pending = {
        tid: row and row["status"] for tid, row in rows.items() if not row or row["status"] not in wanted
    }
    raise TimeoutError(f"not {sorted(wanted)} within {timeout}s: {pending}")
