"""No secret is ever logged: `agents up` runs with known secrets (Redis password, PostgreSQL
password, Flower basic auth, a webhook URL's token), requests go through every piece, and then
every log file of the run, its console and every command's output are searched for each secret.
"""

from __future__ import annotations

import base64
import http.server
import json
import signal
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from agents.stack.health import flower_request
from agents.stack.servers import ServerProcess, free_port
from tests.agents.stack.test_up import stack_env, wait_for_line
from tests.conftest import ROOT

PG_ROLE, PG_DATABASE = "secrets_check", "secrets_check"
PG_PASSWORD = "pg-" + "Kd82hQzP0w"
FLOWER_USER, FLOWER_PASSWORD = "ops", "flower-" + "Tn5vLr03Jc"
WEBHOOK_TOKEN = "hook-" + "Xe71mBq9Ua"
# The stack's own secret stores, owner-only files: the secrets are meant to be there.
SECRET_STORES = {"redis.password", "redis.conf", "stack.env"}


def variants(secret: str) -> set[str]:
    """How a secret could show up in a log: in clear, percent-encoded, in a Basic auth header."""
    return {secret, quote(secret, safe=""), base64.b64encode(secret.encode()).decode()}


def leaks(files: Iterable[Path], secrets: dict[str, str]) -> list[tuple[str, str]]:
    """(file, secret name) for every file holding any form of a secret; unreadable files count as
    text too (bytes are searched, so a binary log cannot hide one)."""
    found = []
    for path in files:
        data = path.read_bytes()
        for name, secret in secrets.items():
            if any(form.encode() in data for form in variants(secret)):
                found.append((str(path), name))
    return found


def test_the_search_finds_a_deliberately_logged_secret(tmp_path: Path) -> None:
    (tmp_path / "clean.log").write_text("redis://:***@127.0.0.1:6379/0 ready\n")
    (tmp_path / "url.log").write_text('{"event": "connect", "url": "redis://:p%40ss@host/0"}\n')
    (tmp_path / "header.log").write_bytes(
        b"\x00Authorization: Basic " + base64.b64encode(b"ops:pw-1") + b"\n"
    )
    (tmp_path / "plain.log").write_text("password is Kd82hQzP0w, oops\n")
    secrets = {"redis": "p@ss", "flower": "ops:pw-1", "pg": "Kd82hQzP0w"}
    found = leaks(sorted(tmp_path.iterdir()), secrets)
    assert sorted((Path(p).name, n) for p, n in found) == [
        ("header.log", "flower"),
        ("plain.log", "pg"),
        ("url.log", "redis"),
    ]


class Webhook(http.server.BaseHTTPRequestHandler):
    """Records what the monitor posts; logs nothing of its own."""

    received: list[str] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Webhook.received.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture()
def webhook() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/{WEBHOOK_TOKEN}"
    server.shutdown()


@pytest.fixture()
def secret_database(postgres_server: ServerProcess) -> Iterator[str]:
    """A database owned by a role with a password, on the session PostgreSQL; its URL."""
    admin = postgres_server.url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
        verifier = conn.pgconn.encrypt_password(PG_PASSWORD.encode(), PG_ROLE.encode(), b"scram-sha-256")
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (PG_ROLE,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(
            sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(PG_ROLE), sql.Literal(verifier.decode())
            )
        )
        conn.execute(f"CREATE DATABASE {PG_DATABASE} OWNER {PG_ROLE}")
    yield f"postgresql://{PG_ROLE}:{PG_PASSWORD}@127.0.0.1:{postgres_server.port}/{PG_DATABASE}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")


THRESHOLDS = """\
thresholds:
  - name: SecretsCheckAlwaysFires
    metric: live_workers
    comparison: ">="
    value: 0
    severity: info
    channels: [log, webhook:ops]
    summary: fires at once, so the webhook is called
webhooks:
  ops: {url}
"""


@pytest.mark.servers
@pytest.mark.timeout(480)
def test_no_secret_reaches_a_log_or_a_console(
    tmp_path: Path, postgres_server: ServerProcess, secret_database: str, webhook: str
) -> None:
    home = tmp_path / "home"
    thresholds = tmp_path / "thresholds.yml"
    thresholds.write_text(THRESHOLDS.format(url=webhook))
    pg_log = postgres_server.log_path
    pg_log_offset = pg_log.stat().st_size
    env = stack_env(home) | {
        "DATABASE_URL": secret_database,
        "FLOWER_BASIC_AUTH": f"{FLOWER_USER}:{FLOWER_PASSWORD}",
        "FLOWER_PORT": str(free_port()),
        "MONITORING_THRESHOLDS": str(thresholds),
        "MONITOR_INTERVAL_SECONDS": "1",
        "LOG_LEVEL": "DEBUG",  # the most a log ever says
    }
    out = tmp_path / "up.out"
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    with open(out, "wb") as sink:
        up = subprocess.Popen(
            [sys.executable, "-m", "agents.cli", "up"],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        printed = wait_for_line(out, "Ctrl-C stops everything", up, timeout=300)
        assert "healthy: redis ok, postgres ok, nats ok, flower ok" in printed
        urls = dict(line.split("=", 1) for line in (home / "stack.env").read_text().splitlines())
        client_env = {k: v for k, v in env.items() if k != "LOG_LEVEL"}
        commands = {
            "route": [sys.executable, "-c",
                      "from tasks import route; print(route.delay({'capability': 'analysis', "
                      "'payload': {'data': [1, 2, 3, 50]}}).get(timeout=60))"],
            "send": [sys.executable, "-m", "agents.cli", "send", "analysis", "--payload", '{"data": [4, 5]}'],
            "status": [sys.executable, "-m", "agents.cli", "status"],
            "doctor": [sys.executable, "-m", "agents.cli", "doctor"],
            "stats": [sys.executable, "-m", "celery", "-A", "tasks", "inspect", "stats", "--json",
                      "--timeout", "5"],
        }  # fmt: skip
        for name, argv in commands.items():
            done = subprocess.run(argv, cwd=ROOT, env=client_env, capture_output=True, timeout=120)
            (outputs / f"{name}.out").write_bytes(done.stdout + b"\n" + done.stderr)
            if name in ("route", "send"):
                assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
        # Flower: a wrong password (refused, and logged as a refusal), then the right one.
        api = f"{urls['FLOWER_URL']}/api/workers?refresh=1"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(flower_request(api, f"{FLOWER_USER}:wrong"), timeout=20)
        refused.value.close()
        with urllib.request.urlopen(flower_request(api, f"{FLOWER_USER}:{FLOWER_PASSWORD}"), timeout=20) as r:
            assert json.load(r)
        # The monitor's alert reached the webhook (the beat's 1 s monitor runs on the maintenance
        # queue), after its log line: the token went through the worker that posts it.
        wait_for_line(home / "logs" / "intelligence.log", "SecretsCheckAlwaysFires", up, timeout=90)
        deadline = time.monotonic() + 30
        while not any(WEBHOOK_TOKEN in path for path in Webhook.received):
            assert time.monotonic() < deadline, f"no webhook call within 30 s: {Webhook.received}"
            time.sleep(0.2)
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=120)
    assert up.returncode == 0, out.read_text()[-3000:]

    password_file = home / "redis.password"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    secrets = {
        "redis password": password_file.read_text().strip(),
        "postgres password": PG_PASSWORD,
        "flower password": FLOWER_PASSWORD,
        "flower basic auth": f"{FLOWER_USER}:{FLOWER_PASSWORD}",
        "webhook token": WEBHOOK_TOKEN,
    }
    # The Redis password was in use: REDIS_URL carried it, and Redis refused anyone without it.
    assert f":{secrets['redis password']}@" in urls["REDIS_URL"]
    files = [p for p in home.rglob("*") if p.is_file() and p.name not in SECRET_STORES]
    files += [out, *outputs.iterdir()]
    assert len([p for p in files if p.suffix == ".log"]) >= 10, sorted(p.name for p in files)
    run_pg_log = tmp_path / "session-postgres.log"
    with open(pg_log, "rb") as fh:
        fh.seek(pg_log_offset)
        run_pg_log.write_bytes(fh.read())
    assert leaks([*files, run_pg_log], secrets) == []
