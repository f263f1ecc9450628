"""A worker's health answers, from what it observed to status code and JSON (pure logic).

tasks/health_server.py gathers an `Observation` in the worker and serves what this module decides:
`/health/live` (is the process working?), `/health/ready` (may it get tasks?) and `/health`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

OK = "ok"
FAIL = "fail"
LIVE_PATH = "/health/live"
READY_PATH = "/health/ready"
HEALTH_PATH = "/health"

# An event loop that has not turned for this long is hung (a blocking call in the main thread):
# liveness fails and the kubelet restarts the worker. Generous, since a loop legitimately blocks
# for a few seconds (a big publish, a pool child starting).
LOOP_STALE_SECONDS = 20.0
# No PONG from the broker for this long (a PING is sent every few seconds): not ready.
PING_STALE_SECONDS = 6.0

# running: in its event loop; starting: connected, its steps starting; connecting: no broker
# connection, retrying; stopping: shutting down.
ConsumerState = Literal["starting", "running", "connecting", "stopping"]


@dataclass(frozen=True, slots=True)
class Observation:
    """What the worker saw at one moment. Ages are seconds; None where nothing was measured."""

    loop_age: float | None  # since the event loop last turned; None: this pool runs no event loop
    consumer: ConsumerState
    connected: bool  # the consumer holds an open broker connection
    queues: tuple[str, ...]  # the queues the worker is told to consume (-Q)
    consuming: frozenset[str]  # the queues its task consumer consumes now
    ping_age: float | None  # since the last PONG from the broker; None: none yet
    ping_error: str | None = None  # the last PING's error; None if it was answered
    pinged: bool = True  # False: the broker is not Redis and is not pinged


@dataclass(frozen=True, slots=True)
class Check:
    """One named check with a human-readable detail."""

    name: str
    ok: bool
    detail: str

    def body(self) -> dict[str, str]:
        """The check as JSON."""
        return {"status": OK if self.ok else FAIL, "detail": self.detail}


def event_loop_check(obs: Observation) -> Check:
    """The main thread is working: its event loop turned lately, or it is (re)connecting to the
    broker or stopping, where Celery leaves the loop on purpose (a restart would not help)."""
    if obs.loop_age is None:
        return Check("event_loop", True, "this pool runs no event loop; not measured")
    if obs.loop_age <= LOOP_STALE_SECONDS:
        return Check("event_loop", True, f"turned {obs.loop_age:.1f}s ago")
    if obs.consumer in ("connecting", "stopping"):
        return Check("event_loop", True, f"{obs.consumer}, out of the loop for {obs.loop_age:.0f}s")
    return Check("event_loop", False, f"did not turn for {obs.loop_age:.0f}s (hung main thread)")


def broker_check(obs: Observation) -> Check:
    """The consumer holds an open broker connection."""
    if obs.connected:
        return Check("broker", True, "connected")
    if obs.consumer == "connecting":
        return Check("broker", False, "connection lost; reconnecting")
    return Check("broker", False, f"not connected (consumer {obs.consumer})")


def broker_ping_check(obs: Observation) -> Check:
    """The broker answered a PING lately (a hung or half-open connection looks connected)."""
    if not obs.pinged:
        return Check("broker_ping", True, "not a Redis broker; not pinged")
    if obs.ping_error is not None:
        return Check("broker_ping", False, f"PING failed: {obs.ping_error}")
    if obs.ping_age is None:
        return Check("broker_ping", False, "no PONG yet")
    if obs.ping_age > PING_STALE_SECONDS:
        return Check("broker_ping", False, f"no PONG for {obs.ping_age:.0f}s")
    return Check("broker_ping", True, f"PONG {obs.ping_age:.1f}s ago")


def consuming_check(obs: Observation) -> Check:
    """The consumer runs its loop and consumes every queue it was told to."""
    if obs.consumer != "running":
        return Check("consuming", False, f"consumer {obs.consumer}")
    missing = [queue for queue in obs.queues if queue not in obs.consuming]
    if missing:
        return Check("consuming", False, f"not consuming {', '.join(missing)}")
    return Check("consuming", True, f"consuming {', '.join(obs.queues)}")


def live_checks(obs: Observation) -> list[Check]:
    """Liveness: the process answers (this very reply) and its main thread works."""
    return [event_loop_check(obs)]


def ready_checks(obs: Observation) -> list[Check]:
    """Readiness: liveness, plus a working broker connection that consumes the worker's queues."""
    return [*live_checks(obs), broker_check(obs), broker_ping_check(obs), consuming_check(obs)]


def status_of(checks: list[Check]) -> str:
    """`ok` when every check passed."""
    return OK if all(check.ok for check in checks) else FAIL


def answer(path: str, obs: Observation) -> tuple[int, dict[str, Any]] | None:
    """Status code and JSON body for a health path (200 all checks pass, 503 otherwise); None
    for a path that is not a health path."""
    if path == LIVE_PATH:
        checks = live_checks(obs)
        body: dict[str, Any] = {"status": status_of(checks)}
    elif path == READY_PATH:
        checks = ready_checks(obs)
        body = {"status": status_of(checks)}
    elif path == HEALTH_PATH:
        checks = ready_checks(obs)  # readiness includes liveness
        body = {"status": status_of(checks), "live": status_of(live_checks(obs)), "ready": status_of(checks)}
    else:
        return None
    body["checks"] = {check.name: check.body() for check in checks}
    return (200 if body["status"] == OK else 503), body


def queue_ready(obs: Observation, queue: str) -> bool:
    """Whether the worker is ready and consumes `queue` (one engine's agent_worker_ready)."""
    others = [check for check in ready_checks(obs) if check.name != "consuming"]
    return obs.consumer == "running" and queue in obs.consuming and status_of(others) == OK
