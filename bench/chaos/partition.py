"""The partition drill: the engine worker runs in its own network namespace and reaches Redis
over a veth pair (Redis also binds the host end's address); the drill takes the link down for
~20 s and brings it back. The worker must notice and consume again (a probe routed to it
finishes); what it held at the cut comes back through the dead-consumer sweep or finishes after
the heal; nothing is lost. Needs root and iproute2's `ip`; without them the scenario is skipped."""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import shutil
import subprocess
import time

import psutil
import redis

from agents.stack.servers import ServerProcess, popen_logged
from bench.chaos.fleet import Fleet
from bench.chaos.ledger import Fault
from bench.chaos.probe import probe

NETNS = f"agents-chaos-{os.getpid()}"
HOST_IF, WORKER_IF = f"chaosh{os.getpid() % 100000}", f"chaosw{os.getpid() % 100000}"
HOST_ADDR, WORKER_ADDR = "10.231.0.1", "10.231.0.2"
CUT_SECONDS = (18.0, 22.0)
UP_SECONDS = (1.0, 3.0)
WORKER = "ledger"
# What the restarted Redis keeps of the running one's configuration.
REDIS_OPTIONS = (
    "port", "dir", "appendonly", "appendfsync", "appendfilename", "save", "maxmemory-policy",
    "maxmemory", "protected-mode", "requirepass", "aclfile", "notify-keyspace-events",
)  # fmt: skip


def ip(*argv: str, netns: bool = False) -> None:
    prefix = ["ip", "netns", "exec", NETNS] if netns else []
    subprocess.run([*prefix, "ip", *argv], check=True, capture_output=True)  # nosec B603 B607


def unavailable() -> str | None:
    """Why the drill cannot run on this machine (None when it can)."""
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    try:
        ip("netns", "add", NETNS)
    except subprocess.CalledProcessError as exc:
        return f"`ip netns add` failed: {exc.stderr.decode(errors='replace').strip()}"
    return None


def bind_redis(fleet: Fleet) -> str:
    """Restart the fleet's Redis (same port, data and options) bound to loopback and the host
    end of the veth; returns the URL the namespaced worker uses."""
    index = [s.name for s in fleet.servers].index("redis")
    server = fleet.servers[index]
    # Redis rewrites its process title, so its options are read back from the server itself.
    argv = [psutil.Process(server.process.pid).exe()]
    for key in REDIS_OPTIONS:
        for name, value in fleet.redis.config_get(key).items():
            if value or key == "save":
                argv += [f"--{name}", str(value)]
    for rule in fleet.redis.acl_list():
        argv += ["--user", *str(rule).removeprefix("user ").split()]
    argv += ["--bind", "127.0.0.1", HOST_ADDR, "--daemonize", "no", "--logfile", ""]
    server.stop()
    process = popen_logged(argv, server.log_path)
    fleet.servers[index] = ServerProcess(
        server.name, server.url, server.port, server.data_dir, process, server.log_path
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            if redis.Redis.from_url(server.url, socket_timeout=1).ping():
                break
        except redis.RedisError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise
            time.sleep(0.1)
    return server.url.replace("127.0.0.1", HOST_ADDR)


def prepare(fleet: Fleet) -> str | None:
    """The namespace, the veth pair, Redis bound to its host end, the engine worker inside."""
    why = unavailable()
    if why:
        return why
    atexit.register(remove_namespace)  # also when the drill stops half-way
    ip("link", "add", HOST_IF, "type", "veth", "peer", "name", WORKER_IF)
    ip("link", "set", WORKER_IF, "netns", NETNS)
    ip("addr", "add", f"{HOST_ADDR}/30", "dev", HOST_IF)
    ip("link", "set", HOST_IF, "up")
    ip("addr", "add", f"{WORKER_ADDR}/30", "dev", WORKER_IF, netns=True)
    ip("link", "set", WORKER_IF, "up", netns=True)
    ip("link", "set", "lo", "up", netns=True)
    url = bind_redis(fleet)
    fleet.kill(WORKER, 15)  # SIGTERM: a warm shutdown, nothing in flight is lost
    fleet.start(WORKER, wrap=("ip", "netns", "exec", NETNS), REDIS_URL=url)
    fleet.wait_consuming()
    return None


def cut_link(fleet: Fleet) -> Fault:
    """Take the worker's link down for CUT_SECONDS, bring it back, wait for a probe it runs."""
    fleet.wait_consuming(timeout=120)
    time.sleep(random.uniform(*UP_SECONDS))
    held = fleet.held_by(WORKER)
    cut = random.uniform(*CUT_SECONDS) * fleet.phase_scale
    fault = Fault(time.time(), f"link to Redis down {cut:.0f} s", held)
    ip("link", "set", HOST_IF, "down")
    # It may have fetched since the first look; its owned set stays until the sweep claims it.
    fault.in_flight |= fleet.held_by(WORKER)
    time.sleep(cut)
    ip("link", "set", HOST_IF, "up")
    return probe(fault)


def restore(fleet: Fleet) -> list[str]:
    """The engine worker back on the host; the namespace and veth pair removed."""
    fleet.kill(WORKER, 15)
    remove_namespace()
    fleet.start(WORKER)
    fleet.wait_consuming()
    return []


def remove_namespace() -> None:
    for argv in (("link", "del", HOST_IF), ("netns", "del", NETNS)):
        with contextlib.suppress(subprocess.CalledProcessError):  # already gone with the namespace
            ip(*argv)
