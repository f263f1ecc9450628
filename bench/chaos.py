"""Failure drill under load: workers are killed and restarted while `agents loadtest` runs.

Starts its own Redis and PostgreSQL, the intelligence (router) and analysis (batch engine)
workers and a history writer, then sends routed requests at RATE for DURATION seconds while:
  at 25% of the run  the analysis worker is SIGKILLed (with up to two batches reserved),
  at 50%             the intelligence worker (the router) is SIGKILLed,
  at 75%             the analysis worker gets a warm shutdown (SIGTERM),
each restarted 3 seconds later. Messages a killed worker had reserved come back after Redis's
visibility timeout (here 180 s: the longest hard time limit plus a shortened margin), so the
drain waits for it.
Prints the load generator's report; exits 1 if any request was lost.
Usage: python -m bench.chaos [RATE] [DURATION]
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from agents.stack.servers import start_postgres, start_redis, stop_all
from bench.compare import spawn

ROOT = Path(__file__).resolve().parent.parent
AGENTS = str(Path(sys.executable).parent / "agents")
RESTART_AFTER_SECONDS = 3.0


class Workers:
    """The workers of the drill, restartable by name."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        argv = [AGENTS, "history-writer"] if name == "history" else [AGENTS, "worker", name]
        self.processes[name] = spawn(argv, self.env, self.logs / f"{name}.log")

    def kill(self, name: str, sig: int) -> None:
        process = self.processes[name]
        if sig == signal.SIGKILL:
            os.killpg(process.pid, sig)  # a crash takes the pool processes with it
        else:
            process.send_signal(sig)  # as Kubernetes stops a pod: the main process only
        process.wait(120)
        print(f"  {time.strftime('%H:%M:%S')} {signal.Signals(sig).name} {name}", flush=True)

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(60)


def drill(workers: Workers, duration: float) -> None:
    """Kill and restart workers at fixed points of the run."""
    plan = [
        (0.25, "analysis", signal.SIGKILL),
        (0.5, "intelligence", signal.SIGKILL),
        (0.75, "analysis", signal.SIGTERM),
    ]
    start = time.monotonic()
    for fraction, name, sig in plan:
        time.sleep(max(0.0, start + fraction * duration - time.monotonic()))
        workers.kill(name, sig)
        time.sleep(RESTART_AFTER_SECONDS)
        workers.start(name)


def main() -> None:
    """Run the drill and print the report."""
    rate = float(sys.argv[1]) if len(sys.argv) > 1 else 300.0
    duration = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
    home = Path(tempfile.mkdtemp(prefix="agents-chaos-"))
    servers = [start_redis(home / "redis"), start_postgres(home / "postgres")]
    env = os.environ | {
        "REDIS_URL": servers[0].url,
        "DATABASE_URL": servers[1].url,
        "AGENTS_HOME": str(home),
        # Shorter limits, so a killed worker's reserved messages come back within minutes
        # (visibility timeout = longest hard limit, analysis's 120 s, + 60 s).
        "AGENT_TASK_TIMEOUT_SECONDS": "60",
        "VISIBILITY_TIMEOUT_MARGIN_SECONDS": "60",
    }
    subprocess.run([AGENTS, "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
    workers = Workers(env, home)
    try:
        for name in ("intelligence", "analysis", "history"):
            workers.start(name)
        time.sleep(8)
        print(f"chaos: {rate:.0f} req/s via route for {duration:.0f} s; logs in {home}", flush=True)
        killer = threading.Thread(target=drill, args=(workers, duration), daemon=True)
        killer.start()
        command = [AGENTS, "loadtest", "--rate", str(rate), "--duration", str(duration), "--via", "route"]
        done = subprocess.run(
            [*command, "--json", "--drain-timeout", "300"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        killer.join()
    finally:
        workers.stop_all()
        stop_all(servers)
    report = json.loads(done.stdout)
    print(json.dumps(report, indent=2))
    sys.exit(1 if report["lost"] else 0)


if __name__ == "__main__":
    main()
