"""Runs the demo's script (agents/demo/script.py) against a running stack (`make run`).

It starts the two tunable engines' workers (unless they run already), sends a steady routed load,
injects each phase's faults (`agents faults`), and every few seconds asks the maintenance worker
to run the performance engine's monitor with the demo's thresholds and rules
(agents/demo/*.yml, kept apart from the scheduled monitor's state). What the platform does is
read back from where an operator reads it: `agents alerts`, `agents actions`, `agents insights`.
"""

from __future__ import annotations

import os
import subprocess  # nosec B404 # starts the demo's own workers, argv lists, no shell
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agents.connections import redis_client, registry
from agents.demo.script import BLUE, GREEN, Outcome, Phase, checks, share
from agents.engines.tunable import DEMO_ENGINES
from agents.faults import clear_faults, set_faults
from agents.names import CAP_DEMO, MAINTENANCE_QUEUE
from agents.recorder import written_through
from agents.settings import get_settings
from tasks import route
from tasks.maintenance import monitor

HERE = Path(__file__).parent
MONITOR_EVERY_SECONDS = 2.0
SETTLE_SECONDS = 60.0  # a backlog left by the degraded phase drains in seconds once the load stops
Echo = Callable[[str], None]


def start_workers() -> list[subprocess.Popen[bytes]]:
    """`agents worker demo_blue` and `agents worker demo_green`, logging under AGENTS_HOME/logs."""
    settings = get_settings()
    logs = settings.agents_home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    engines = ",".join([*settings.engine_paths, *DEMO_ENGINES])
    env = {**os.environ, "AGENT_ENGINES": engines, "HEALTH_PORT": "0"}
    processes = []
    for name in (BLUE, GREEN):
        argv = [sys.executable, "-m", "agents.cli", "worker", name]
        with open(logs / f"{name}.log", "ab") as log:
            process = subprocess.Popen(  # nosec B603 # this interpreter, a fixed command, no shell
                argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        processes.append(process)
    return processes


def wait_for_workers(timeout: float = 60.0) -> None:
    """Until both demo engines have a live heartbeat."""
    deadline = time.monotonic() + timeout
    while not {BLUE, GREEN} <= set(registry().live_workers()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{BLUE} and {GREEN} sent no heartbeat within {timeout:g}s (see their logs)")
        time.sleep(0.5)


class Load:
    """A steady open-loop load of routed `demo` requests from a thread."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            due = int((time.monotonic() - started) * self.rate)
            while self.sent < due:
                route.delay({"capability": CAP_DEMO, "task_type": "demo", "payload": {}})
                self.sent += 1
            self._stop.wait(0.02)


class Watcher:
    """Runs the demo's monitor in the maintenance worker and tells what it did, as it happens."""

    def __init__(self, echo: Echo) -> None:
        self.echo = echo
        self.kwargs = {
            "thresholds_yaml": (HERE / "thresholds.yml").read_text(),
            "rules_yaml": (HERE / "rules.yml").read_text(),
            "scope": "demo",
        }

    def tick(self) -> None:
        result = monitor.apply_async(kwargs=self.kwargs, queue=MAINTENANCE_QUEUE).get(timeout=30)
        for alert in result["alerts"]:
            self.echo(f"  alert   {alert['summary']}")
        for action in result["actions"]:
            self.echo(f"  action  {_describe_action(action)}")


def _describe_action(action: dict[str, Any]) -> str:
    parts = [f"{action.get('action')} on {action.get('engine')} ({action.get('rule', 'revert')})"]
    if action.get("verdict"):
        parts.append(f"verdict {action['verdict']}")
    if action.get("params"):
        parts.append(f"params {action['params']}")
    return ", ".join(parts)


def run_phase(phase: Phase, watcher: Watcher, echo: Echo) -> tuple[datetime, datetime]:
    """Inject the phase's faults and watch; returns the phase's second half (what is judged)."""
    for engine in (BLUE, GREEN):
        clear_faults(redis_client(), engine)
    for engine, faults in phase.faults.items():
        set_faults(redis_client(), engine, faults.get("delay_ms"), faults.get("fail_ratio"))
    echo(f"[{phase.name}] {phase.seconds:g} s: {phase.watch}")
    start = datetime.now(UTC)
    end = time.monotonic() + phase.seconds
    while time.monotonic() < end:
        next_tick = time.monotonic() + MONITOR_EVERY_SECONDS
        watcher.tick()
        time.sleep(max(0.0, min(next_tick, end) - time.monotonic()))
    finish = datetime.now(UTC)
    return start + (finish - start) / 2, finish


def run_demo(
    script: list[Phase], rate: float, workers: bool, echo: Echo
) -> tuple[Outcome, list[tuple[str, bool]]]:
    """Play the script under load; returns what the platform did and the script's checks."""
    from db import history
    from db.actions import list_actions
    from db.alerts import list_alerts
    from db.insights import list_insights

    # Rows newer than these are the scenario's (ids, not clocks: the database's zone may differ).
    before = {
        "alerts": _newest(list_alerts(limit=1)), "actions": _newest(list_actions(limit=1)),
        "insights": _newest(list_insights(limit=1)),
    }  # fmt: skip
    processes = start_workers() if workers else []
    outcome = Outcome()
    try:
        wait_for_workers()
        watcher = Watcher(echo)
        judged: dict[str, tuple[datetime, datetime]] = {}
        with Load(rate):
            for phase in script:
                judged[phase.name] = since, until = run_phase(phase, watcher, echo)
                echo(_shares(history.engine_figures(CAP_DEMO, since, until)))
            for engine in (BLUE, GREEN):
                clear_faults(redis_client(), engine)
        # Judged once the requests sent have finished and their records are written: under load a
        # phase's last requests still wait in a queue when it ends.
        settled = wait_until_settled(max(until for _, until in judged.values()).timestamp())
        echo(f"  settled {'yes' if settled else 'no (judging what finished)'}; the phases' figures:")
        for name, (since, until) in judged.items():
            outcome.figures[name] = history.engine_figures(CAP_DEMO, since, until)
            echo(f"  {name:<7} " + _shares(outcome.figures[name]).removeprefix("  share   "))
        outcome.alerts = [a for a in list_alerts(limit=500) if a["id"] > before["alerts"]]
        outcome.actions = [a for a in list_actions(limit=500) if a["id"] > before["actions"]]
        outcome.insights = [i for i in list_insights(limit=500) if i["id"] > before["insights"]]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
    return outcome, checks(outcome)


def wait_until_settled(until: float, timeout: float = SETTLE_SECONDS) -> bool:
    """Until the history holds every record made before `until` and the demo engines' requests
    created before it have finished, or stopped finishing for 3 s (a stale row); False when
    `timeout` passed first."""
    from db.insights import unfinished

    deadline = time.monotonic() + timeout
    last, still_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        if written_through(redis_client()) >= until:
            waiting = sum(unfinished(engine, 0.0, until) for engine in (BLUE, GREEN))
            if waiting != last:
                last, still_since = waiting, time.monotonic()
            if waiting == 0 or time.monotonic() - still_since > 3.0:
                return True
        time.sleep(0.5)
    return False


def _shares(figures: dict[str, dict[str, float]]) -> str:
    parts = []
    for engine in (BLUE, GREEN):
        f = figures.get(engine, {"ran": 0, "failed": 0, "finished": 0, "runtime_p50": 0.0})
        p50 = f"p50 {f['runtime_p50'] * 1000:.0f} ms" if f["finished"] else "none finished yet"
        parts.append(
            f"{engine} {share(figures, engine):.0%} of traffic, "
            f"{f['failed']:.0f}/{f['ran']:.0f} failed, {p50}"
        )
    return "  share   " + "; ".join(parts)


def _newest(rows: list[dict[str, Any]]) -> int:
    return int(rows[0]["id"]) if rows else 0
