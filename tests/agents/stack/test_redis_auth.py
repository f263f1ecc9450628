"""Redis with a password, as `agents up` starts it: workers and `.delay()` clients work with the
password in REDIS_URL, a client without it is refused, and no log or command line shows it."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from agents.stack.credentials import redis_password
from agents.stack.servers import ServerProcess, restart, start_redis
from agents.urls import masked
from tests.conftest import ROOT, SESSION_HOME, spawn_worker, stop_worker

pytestmark = pytest.mark.servers
PASSWORD = "auth-test-" + "Zq7rWb2kLx9"  # a known secret, to look for in every log


@pytest.fixture(scope="module")
def secured_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A Redis of its own with `requirepass`, started the way `agents up` starts one."""
    server = start_redis(tmp_path_factory.mktemp("secured") / "redis", password=PASSWORD)
    yield server
    server.stop()


def test_password_is_in_the_url_and_nowhere_on_the_command_line(secured_redis: ServerProcess) -> None:
    assert secured_redis.url.startswith(f"redis://:{PASSWORD}@127.0.0.1:")
    assert masked(secured_redis.url) == f"redis://:***@127.0.0.1:{secured_redis.port}/0"
    # `ps` shows argv to every user of the machine: the password lives in an owner-only file.
    argv = " ".join(psutil.Process(secured_redis.process.pid).cmdline())
    assert PASSWORD not in argv
    config = secured_redis.data_dir / "redis.conf"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert PASSWORD in config.read_text()


def test_a_client_without_the_password_is_refused(secured_redis: ServerProcess) -> None:
    port = secured_redis.port
    # RESP2, as kombu's client speaks: Redis answers NOAUTH.
    anonymous = _client(port, protocol=2)
    with anonymous, pytest.raises(redis.AuthenticationError, match="Authentication required"):
        anonymous.ping()
    resp3 = _client(port, protocol=3)
    with resp3, pytest.raises(redis.AuthenticationError, match="must be called with the client already"):
        resp3.ping()  # RESP3's HELLO is refused too
    guesser = _client(port, password="wrong")
    with guesser, pytest.raises(redis.AuthenticationError, match="invalid username-password pair"):
        guesser.ping()
    with redis.Redis.from_url(secured_redis.url, socket_timeout=5) as client:
        assert client.ping()


def test_worker_and_delay_client_work_with_the_password_and_never_log_it(
    secured_redis: ServerProcess, postgres_server: ServerProcess
) -> None:
    env = {"REDIS_URL": secured_redis.url, "HEALTH_PORT": "0"}
    log_path = SESSION_HOME / "auth-worker.log"
    log_path.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-Q", "analysis",
            "-n", "auth@localhost", "-c", "1", "-P", "prefork", "--loglevel", "INFO"]  # fmt: skip
    worker = spawn_worker(argv, "auth-worker", **env)
    try:
        code = (
            "from tasks import engine_task; "
            'result = engine_task("analysis").delay({"payload": {"data": [1, 2, 3, 50]}}); '
            'print(result.get(timeout=60)["max"])'
        )
        client = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=os.environ | env,
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert client.returncode == 0, client.stderr[-3000:]
        assert client.stdout.strip() == "50.0", client.stdout
    finally:
        stop_worker(worker)
    logged = log_path.read_text(errors="replace")
    assert "celery@" in logged or "auth@localhost" in logged  # the worker did log (its banner)
    assert f"redis://:**@127.0.0.1:{secured_redis.port}" in logged  # Celery masks the URL it prints
    assert PASSWORD not in logged
    assert PASSWORD not in client.stdout + client.stderr


def test_restart_keeps_the_password(secured_redis: ServerProcess) -> None:
    restarted = restart(secured_redis)
    try:
        assert restarted.url == secured_redis.url
        with redis.Redis.from_url(restarted.url, socket_timeout=5) as client:
            assert client.ping()
        anonymous = _client(restarted.port)
        with anonymous, pytest.raises(redis.AuthenticationError):
            anonymous.ping()
    finally:
        secured_redis.process = restarted.process  # the module fixture stops what now runs


def test_stack_password_is_made_once_per_home_and_owner_only(tmp_path: Path) -> None:
    first = redis_password(tmp_path)
    assert len(first) >= 30 and redis_password(tmp_path) == first
    path = tmp_path / "redis.password"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert redis_password(tmp_path / "other") != first
    path.write_text("")  # an emptied file never means "no password"
    assert len(redis_password(tmp_path)) >= 30


def _client(port: int, password: str | None = None, protocol: int = 3) -> redis.Redis:
    # A refused AUTH is final: without `retry`, redis-py retries it with backoff for seconds.
    return redis.Redis(
        port=port, password=password, protocol=protocol, socket_timeout=5, retry=Retry(NoBackoff(), 0)
    )
