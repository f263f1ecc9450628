"""A worker's /health, /health/live, /health/ready and /metrics (tasks/health_server.py) on real
workers, one of them behind a TCP proxy to Redis that the tests cut (connections refused) or stall
(bytes held) to break its broker connection for real. The pure decisions: tests/agents/test_health.py."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agents import health
from agents.stack.servers import ServerProcess, free_port
from tests.conftest import REDIS_PORT, SESSION_HOME, spawn_worker, stop_worker

QUEUE = "analysis"


class RedisProxy:
    """A TCP proxy to the session's Redis in front of one worker, to cut or stall its Redis."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepting = threading.Event()  # cleared: connections are closed as they arrive
        self.accepting.set()
        self.flowing = threading.Event()  # cleared: bytes are held, connections stay open
        self.flowing.set()
        self.links: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            if not self.accepting.is_set():
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self.lock:
                self.links |= {client, upstream}
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self.flowing.wait()
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            self._drop(sock)

    def _drop(self, sock: socket.socket) -> None:
        with self.lock:
            self.links.discard(sock)
        with contextlib.suppress(OSError):  # already closed by the other pump
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def cut(self) -> None:
        """Close every connection and every new one: the worker sees Redis go away."""
        self.accepting.clear()
        with self.lock:
            links = list(self.links)
        for sock in links:
            self._drop(sock)

    def stall(self) -> None:
        """Hold every byte: connections stay open but nothing is answered (a hung Redis)."""
        self.flowing.clear()

    def restore(self) -> None:
        self.accepting.set()
        self.flowing.set()

    def close(self) -> None:
        self.restore()
        self.listener.close()
        self.cut()


def get(url: str) -> tuple[int, bytes]:
    """Status and body of a GET (a 503 is an answer, not an error)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def get_json(url: str) -> tuple[int, dict[str, Any]]:
    code, body = get(url)
    return code, json.loads(body)


def wait_until(what: str, condition: Callable[[], bool], timeout: float, every: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    raise TimeoutError(f"{what} not within {timeout}s")


@dataclass
class HealthWorker:
    """A worker of QUEUE serving its health endpoints on `port`, its Redis through `proxy`."""

    process: subprocess.Popen[bytes]
    node: str
    port: int
    log: Path
    proxy: RedisProxy | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def ready(self) -> bool:
        try:
            return get(self.url(health.READY_PATH))[0] == 200
        except urllib.error.URLError:
            return False  # not serving yet


def start_health_worker(name: str, port: int, proxy: RedisProxy | None = None) -> HealthWorker:
    """A prefork worker of QUEUE with HEALTH_PORT=`port`; its Redis through `proxy` if given."""
    node = f"{name}-{os.getpid()}@localhost"
    argv = [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-Q", QUEUE,
            "-n", node, "-c", "1", "-P", "prefork", "--loglevel", "INFO"]  # fmt: skip
    env = {"HEALTH_PORT": str(port)}
    if proxy is not None:
        env["REDIS_URL"] = f"redis://127.0.0.1:{proxy.port}/0"
    log = SESSION_HOME / f"{name}.log"
    log.unlink(missing_ok=True)
    return HealthWorker(spawn_worker(argv, name, **env), node, port, log, proxy)


@pytest.fixture(scope="module")
def proxied_worker(redis_server: ServerProcess) -> Iterator[HealthWorker]:
    """A worker whose Redis connections (broker, results, heartbeats) all pass through a proxy."""
    proxy = RedisProxy(REDIS_PORT)
    worker = start_health_worker("health", free_port(), proxy)
    try:
        wait_until("the worker's readiness", worker.ready, timeout=60)
        yield worker
    finally:
        stop_worker(worker.process)
        proxy.close()


@pytest.mark.servers
def test_endpoints_answer_with_their_checks(proxied_worker: HealthWorker) -> None:
    code, body = get_json(proxied_worker.url("/health"))
    assert code == 200, body
    assert (body["status"], body["live"], body["ready"]) == ("ok", "ok", "ok")
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "event_loop": "ok", "broker": "ok", "broker_ping": "ok", "consuming": "ok",
    }  # fmt: skip
    assert body["checks"]["consuming"]["detail"] == f"consuming {QUEUE}"

    code, live = get_json(proxied_worker.url("/health/live"))
    assert code == 200
    assert live["status"] == "ok"
    assert list(live["checks"]) == ["event_loop"]
    code, ready = get_json(proxied_worker.url("/health/ready/"))
    assert code == 200
    assert list(ready["checks"]) == ["event_loop", "broker", "broker_ping", "consuming"]

    code, metrics = get(proxied_worker.url("/metrics"))
    text = metrics.decode()
    assert code == 200
    assert f'agent_worker_ready{{engine="{QUEUE}"}} 1.0' in text
    assert "process_resident_memory_bytes" in text
    assert "python_info" in text

    assert get(proxied_worker.url("/metrics/other"))[0] == 404
    assert get(proxied_worker.url("/"))[0] == 404


@pytest.mark.servers
def test_only_the_main_process_holds_the_listening_socket(proxied_worker: HealthWorker) -> None:
    # A pool child forked after the server started (here: the replacement of a killed one) gets a
    # copy of every file descriptor; it closes its copy of the socket.
    main = proxied_worker.process.pid
    (child,) = children(main)
    os.kill(int(child), signal.SIGKILL)
    wait_until("a new pool child", lambda: len(set(children(main)) - {child}) == 1, timeout=20)
    inode = listening_inode(proxied_worker.port)
    holders = [pid for pid in os.listdir("/proc") if pid.isdigit() and holds_socket(pid, inode)]
    assert holders == [str(main)]


@pytest.mark.servers
def test_a_cut_broker_fails_readiness_and_it_recovers(proxied_worker: HealthWorker) -> None:
    live_codes: list[int] = []
    ready_seen: list[dict[str, Any]] = []

    def not_ready() -> bool:
        live_codes.append(get(proxied_worker.url(health.LIVE_PATH))[0])
        code, body = get_json(proxied_worker.url(health.READY_PATH))
        if code == 503:
            ready_seen.append(body)
        return code == 503

    assert proxied_worker.proxy is not None
    proxied_worker.proxy.cut()
    try:
        wait_until("readiness to fail", not_ready, timeout=15)
        time.sleep(3)  # the worker keeps retrying meanwhile
        code, body = get_json(proxied_worker.url(health.READY_PATH))
        metrics = get(proxied_worker.url("/metrics"))[1].decode()
    finally:
        proxied_worker.proxy.restore()
    assert code == 503
    assert body["checks"]["broker"] == {"status": "fail", "detail": "connection lost; reconnecting"}
    assert body["checks"]["broker_ping"]["status"] == "fail"
    assert body["checks"]["consuming"]["status"] == "fail"
    assert f'agent_worker_ready{{engine="{QUEUE}"}} 0.0' in metrics

    def ready_again() -> bool:
        live_codes.append(get(proxied_worker.url(health.LIVE_PATH))[0])
        return proxied_worker.ready()

    wait_until("readiness to come back", ready_again, timeout=45)
    assert set(live_codes) == {200}  # reconnecting is not a reason to restart the worker
    assert "broker" in failing_names(ready_seen[0])
    # The event loop's tick survived the reconnect: it still notes a turn every second.
    time.sleep(2)
    assert loop_age(get_json(proxied_worker.url(health.LIVE_PATH))[1]) <= 1.5


@pytest.mark.servers
def test_a_stalled_broker_fails_readiness_through_the_ping(proxied_worker: HealthWorker) -> None:
    # Connections stay open, so the consumer still counts as connected: only a round trip tells.
    assert proxied_worker.proxy is not None
    wait_until("readiness", proxied_worker.ready, timeout=45)
    proxied_worker.proxy.stall()
    try:
        bodies: list[dict[str, Any]] = []

        def not_ready() -> bool:
            code, body = get_json(proxied_worker.url(health.READY_PATH))
            bodies.append(body)
            return code == 503

        wait_until("readiness to fail", not_ready, timeout=20)
        live = get(proxied_worker.url(health.LIVE_PATH))[0]
    finally:
        proxied_worker.proxy.restore()
    assert live == 200
    assert failing_names(bodies[-1]) == ["broker_ping"]
    assert bodies[-1]["checks"]["broker"]["status"] == "ok"
    wait_until("readiness to come back", proxied_worker.ready, timeout=45)


@pytest.mark.servers
def test_a_busy_port_is_logged_and_the_worker_keeps_working(proxied_worker: HealthWorker) -> None:
    from agents.connections import registry

    # Two workers given the same HEALTH_PORT: the second one names it in its log and runs on.
    second = start_health_worker("health-clash", proxied_worker.port)
    try:
        wait_until(
            "the second worker's heartbeat",
            lambda: second.node in registry().live_workers().get(QUEUE, []),
            timeout=60,
        )
        assert second.process.poll() is None
        log = second.log.read_text()
        expected = f"HEALTH_PORT={proxied_worker.port}: port {proxied_worker.port} is already in use"
        assert expected in log
        assert "health_server_started" not in log
    finally:
        stop_worker(second.process)
    # The first worker's endpoints were never taken over.
    assert get(proxied_worker.url("/health"))[0] == 200


@pytest.mark.servers
def test_the_port_is_released_on_warm_shutdown(redis_server: ServerProcess) -> None:
    worker = start_health_worker("health-stop", free_port())
    try:
        wait_until("the worker's readiness", worker.ready, timeout=60)
    finally:
        worker.process.send_signal(signal.SIGTERM)  # warm shutdown of the main process
        worker.process.wait(timeout=30)
    assert "health_server_stopped" in worker.log.read_text()
    with socket.create_server(("0.0.0.0", worker.port)):
        pass  # bindable again: nothing holds the port


def failing_names(body: dict[str, Any]) -> list[str]:
    return [name for name, check in body["checks"].items() if check["status"] == "fail"]


def loop_age(body: dict[str, Any]) -> float:
    """Seconds since the event loop turned, from the event_loop check's `turned 0.4s ago`."""
    detail = body["checks"]["event_loop"]["detail"]
    assert detail.startswith("turned "), detail
    return float(detail.removeprefix("turned ").removesuffix("s ago"))


def listening_inode(port: int) -> str:
    """The inode of the socket listening on `port` (any address), from /proc/net/tcp."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
            return fields[9]
    raise AssertionError(f"nothing listens on {port}")


def holds_socket(pid: str, inode: str) -> bool:
    try:
        return any(
            os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]" for fd in os.listdir(f"/proc/{pid}/fd")
        )
    except OSError:
        return False  # gone, or not ours to read


def children(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
