"""`agents up` / `make run`: the whole platform on loopback until Ctrl-C.

Servers the environment does not point elsewhere are started here; then a worker per engine,
beat and Flower. The URLs in use go to `.agents/stack.env`, which the settings of any other
`agents` or `celery -A tasks` command read, so a second terminal needs no exports.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from rich.console import Console

from agents.catalog import engines
from agents.monitoring.files import configuration_problems
from agents.settings import Settings, get_settings
from agents.stack import health
from agents.stack.children import Child
from agents.stack.credentials import owner_only, redis_password
from agents.stack.ha import start_ha_servers
from agents.stack.servers import (
    ServerProcess,
    free_port,
    port_free,
    start_nats,
    start_postgres,
    start_redis,
    stop_all,
)
from agents.urls import masked
from agents.worker import worker_argv

console = Console()
# Ports a developer expects; a busy one falls back to a free port.
PREFERRED_PORTS = {"redis": 6379, "postgres": 5432, "nats": 4222, "exporter": 9808}
WORKER_GRACE_SECONDS = 30.0
FLOWER_USER = "admin"  # the user of the generated FLOWER_BASIC_AUTH
FLOWER_STATE_SAVE_MS = 300_000  # and on a clean stop; a save pickles up to 100k tasks

_ROUTE_CALL = (
    "from tasks import route; "
    'print(route.delay({"capability": "analysis", "payload": {"data": [1, 2, 3, 50]}}).get(timeout=10))'
)
EXAMPLE = (
    "[bold]Try it[/bold] (another terminal, in this folder):\n"
    f"  .venv/bin/python -c '{_ROUTE_CALL}'\n"
    "  .venv/bin/agents status\n"
    "  .venv/bin/celery -A tasks inspect ping"
)


class StackAlreadyRunning(RuntimeError):
    """Another `agents up` owns this AGENTS_HOME."""


def _port(name: str) -> int:
    preferred = PREFERRED_PORTS[name]
    return preferred if port_free(preferred) else free_port()


def _claim_home(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    pid_file = home / "stack.pid"
    if pid_file.exists():
        try:
            other = int(pid_file.read_text().strip())
            os.kill(other, 0)
        except (ValueError, ProcessLookupError, PermissionError):
            pass  # stale file from a stack that died
        else:
            raise StackAlreadyRunning(f"a stack (pid {other}) already runs from {home}; stop it first")
    pid_file.write_text(str(os.getpid()))
    return pid_file


def start_servers(settings: Settings, from_env: set[str]) -> tuple[list[ServerProcess], dict[str, str]]:
    """Start each server the environment does not name; returns them and the URLs in use."""
    home = settings.agents_home
    urls = {
        "REDIS_URL": settings.redis_url,
        "DATABASE_URL": settings.database_url,
        "NATS_URL": settings.nats_url,
    }
    servers: list[ServerProcess] = []
    starters: dict[str, tuple[str, Callable[[Path, int], ServerProcess]]] = {
        # Clients AUTH with a password kept (owner-only) in AGENTS_HOME; REDIS_URL carries it.
        "REDIS_URL": ("redis", lambda d, p: start_redis(d, p, redis_password(home))),
        "DATABASE_URL": ("postgres", lambda d, p: start_postgres(d, p)),
        "NATS_URL": ("nats", lambda d, p: start_nats(d, p)),
    }
    try:
        for key, (name, start) in starters.items():
            if key.lower() in from_env:
                console.print(f"{name}: using {key} from the environment")
                continue
            console.print(f"starting {name} ...")
            server = start(home / name, _port(name))
            servers.append(server)
            urls[key] = server.url
    except BaseException:
        stop_all(servers)
        raise
    return servers, urls


def migrate_database() -> None:
    """Bring the schema to the newest revision before any worker writes history."""
    from db.migrate import upgrade

    upgrade("head")


def write_stack_env(path: Path, values: dict[str, str]) -> None:
    """KEY=value lines the settings read; owner-only since it holds passwords (Redis, Flower)."""
    owner_only(path, "".join(f"{k}={v}\n" for k, v in values.items()))


def health_urls(ports: dict[str, int]) -> dict[str, str]:
    """HEALTH_URL_<ENGINE> for each worker's health port, as written to stack.env."""
    return {f"HEALTH_URL_{name.upper()}": f"http://127.0.0.1:{port}/health" for name, port in ports.items()}


def flower_argv(settings: Settings) -> list[str]:
    """Flower on loopback, its state (tasks, workers) kept in `<AGENTS_HOME>/flower.db` across
    restarts and saved every FLOWER_STATE_SAVE_MS too, in case it dies without a clean stop.

    Basic auth comes from FLOWER_BASIC_AUTH in the child's environment (Flower reads
    `FLOWER_<OPTION>` variables), not from the command line, where `ps` would show the password.
    """
    return [
        sys.executable, "-m", "celery", "-A", "tasks", "flower",
        "--address=127.0.0.1", f"--port={settings.flower_port}",
        "--persistent=True", f"--db={settings.agents_home / 'flower.db'}",
        f"--state_save_interval={FLOWER_STATE_SAVE_MS}",
    ]  # fmt: skip


def flower_login(from_env: str | None, stack_env: Path) -> tuple[str, str]:
    """FLOWER_BASIC_AUTH for this run and the console line saying how to log in.

    Set in the environment, it is used as is and not echoed. Unset, a fresh `admin:<random>` is
    made; the local stack binds loopback only, so the password is printed once on this console
    (never to a log file) and kept, owner-only, in `stack_env` while the stack runs.
    """
    if from_env:
        return from_env, "flower login: the user:password of FLOWER_BASIC_AUTH (from the environment)"
    credentials = f"{FLOWER_USER}:{secrets.token_urlsafe(16)}"
    user, _, password = credentials.partition(":")
    return credentials, (
        f"flower login: user [bold]{user}[/bold], password [bold]{password}[/bold] "
        f"(new each run; also FLOWER_BASIC_AUTH in {_shown(stack_env)})"
    )


def start_celery(settings: Settings, env: dict[str, str], health_ports: dict[str, int]) -> list[Child]:
    """A worker per engine (each with its own health port), then beat, the bridge, the history
    writer, the exporter and Flower, each logging to `.agents/logs/`."""
    logs = settings.agents_home / "logs"
    logs.mkdir(exist_ok=True)
    celery = [sys.executable, "-m", "celery", "-A", "tasks"]
    children = [
        Child(name, worker_argv(name), logs / f"{name}.log", env | {"HEALTH_PORT": str(health_ports[name])})
        for name in engines()
    ]
    children.append(
        Child("beat", [*celery, "beat", "--loglevel", settings.log_level,
                       "--schedule", str(settings.agents_home / "celerybeat-schedule"),
                       "--pidfile", ""],
              logs / "beat.log", env)
    )  # fmt: skip
    # The NATS bridge: external events become engine tasks (agents/bridge/).
    bridge = [sys.executable, "-m", "agents.cli", "bridge", "--metrics-port", env["BRIDGE_METRICS_PORT"]]
    children.append(Child("bridge", bridge, logs / "bridge.log", env))
    if not settings.history_writer_in_workers:
        # Lifecycle records wait in Redis until this writer moves them to PostgreSQL.
        writer = [sys.executable, "-m", "agents.cli", "history-writer"]
        children.append(Child("history", writer, logs / "history.log", env))
    # Prometheus metrics of the whole platform (agents/exporter), read from Redis and PostgreSQL.
    exporter = [sys.executable, "-m", "agents.cli", "exporter", "--host", "127.0.0.1"]
    children.append(Child("exporter", exporter, logs / "exporter.log", env))
    children.append(Child("flower", flower_argv(settings), logs / "flower.log", env))
    for child in children:
        child.start()
    return children


def stop_children(children: list[Child]) -> None:
    """Flower and beat first, then a warm shutdown of every worker (running tasks finish)."""
    for child in reversed(children):
        child.signal(signal.SIGTERM)
    for child in reversed(children):
        child.wait(WORKER_GRACE_SECONDS)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def print_pieces(servers: list[ServerProcess], urls: dict[str, str], children: list[Child]) -> None:
    """Where each piece listens, its pid and its log: one line each, never truncated."""
    rows = [(s.name, masked(s.url), f"pid {s.process.pid}", _shown(s.log_path)) for s in servers]
    started = {s.name for s in servers}
    for key, kind in (("REDIS_URL", "redis"), ("DATABASE_URL", "postgres"), ("NATS_URL", "nats")):
        if kind not in started:
            rows.append((kind, masked(urls[key]), "external", ""))
        elif urls[key] not in {s.url for s in servers}:  # several servers: what clients are given
            rows.append((f"{kind} URL", masked(urls[key]), "clients", ""))
    for child in children:
        where = {
            "flower": urls["FLOWER_URL"],
            "beat": "periodic jobs",
            "bridge": f"NATS events, {urls.get('BRIDGE_METRICS_URL', '')}",
            "history": "Redis -> PostgreSQL",
            "exporter": f"{urls['EXPORTER_URL']}/metrics",
        }.get(child.name, f"queue {child.name}, {urls.get(f'HEALTH_URL_{child.name.upper()}', '')}")
        rows.append((child.name, where, f"pid {child.pid}", _shown(child.log_path)))
    width = max(len(r[1]) for r in rows)
    for name, where, pid, log in rows:
        console.print(f"  {name:<13} {where:<{width}}  {pid:<10} {log}", soft_wrap=True, highlight=False)


def run_stack(ha: bool = False) -> int:
    """Run until SIGINT/SIGTERM; returns the exit status. `ha`: the highly available topology
    (agents/stack/ha.py) instead of one server of each."""
    base = Settings(_env_file=None)
    from_env = set(base.model_fields_set)
    if ha and (named := sorted(k.upper() for k in from_env & {"redis_url", "database_url", "nats_url"})):
        console.print(f"[red]agents up --ha starts its own servers; unset {', '.join(named)}[/red]")
        return 1
    home = base.agents_home
    problems = configuration_problems(base)  # the intelligence worker would refuse to start
    if problems:
        console.print("[red]the monitoring configuration is refused; fix it and run again:[/red]")
        console.print("\n".join(problems), markup=False, highlight=False, soft_wrap=True)
        return 1
    try:
        pid_file = _claim_home(home)
    except StackAlreadyRunning as exc:
        console.print(f"[red]{exc}[/red]")
        return 1
    stop_requested = False

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    servers: list[ServerProcess] = []
    children: list[Child] = []
    stack_env = home / "stack.env"
    try:
        servers, urls = start_ha_servers(home) if ha else start_servers(base, from_env)
        urls["FLOWER_URL"] = f"http://127.0.0.1:{base.flower_port}"
        # Flower always asks for basic auth; its JSON API (health check, scripts) sends it too.
        urls["FLOWER_BASIC_AUTH"], login_line = flower_login(base.flower_basic_auth, stack_env)
        exporter_port = base.exporter_port if "exporter_port" in from_env else _port("exporter")
        urls["EXPORTER_PORT"] = str(exporter_port)
        urls["EXPORTER_URL"] = f"http://127.0.0.1:{exporter_port}"
        urls["BRIDGE_METRICS_PORT"] = str(free_port())
        urls["BRIDGE_METRICS_URL"] = f"http://127.0.0.1:{urls['BRIDGE_METRICS_PORT']}/metrics"
        health_ports = {name: free_port() for name in engines()}
        urls |= health_urls(health_ports)
        write_stack_env(stack_env, urls)
        get_settings.cache_clear()
        console.print("applying database migrations ...")
        migrate_database()
        env = {**os.environ, **urls, "AGENTS_HOME": str(home)}
        children = start_celery(get_settings(), env, health_ports)
        print_pieces(servers, urls, children)
        report = health.wait_until_healthy(get_settings(), list(engines()), lambda: stop_requested)
        console.print(report.line())
        console.print(login_line, soft_wrap=True, highlight=False)
        console.print(EXAMPLE, soft_wrap=True, highlight=False)
        console.print("[dim]Ctrl-C stops everything.[/dim]")
        while not stop_requested:
            for child in children:
                child.restart_if_dead(console)
            time.sleep(0.5)
        console.print("stopping: flower, beat, workers (warm shutdown), then servers ...")
        return 0
    finally:
        stop_children(children)
        stop_all(servers)
        stack_env.unlink(missing_ok=True)
        pid_file.unlink(missing_ok=True)
        console.print("stopped; no process left running.")
