"""Scale-out figures: what a routed request costs Redis and PostgreSQL, and the ceilings that implies.

Starts its own Redis and PostgreSQL, the router and analysis workers and a history writer as
`make run` does, then: an idle window (the baseline: heartbeats, idle waits, writer polls); a routed
load (`agents loadtest --via route`) with Redis's INFO and PostgreSQL's pg_stat counters read before
and after, net of the idle baseline scaled to the load window; then, workers stopped, a burst that
drains a backlog of synthetic lifecycle records through the real HistoryWriter (claim script, merge,
db.history.upsert in batches) to time one writer + one PostgreSQL. The arithmetic (`delta` to
`history_ceiling`) is pure, unit-tested without servers.
Usage: python -m bench.scaling [--rate 300] [--duration 30] [--burst 20000] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil
import psycopg
import redis

from agents.stack.servers import start_postgres, start_redis, stop_all
from bench.compare import ROOT, spawn, stop
from bench.cpu import cpu_seconds

AGENTS = str(Path(sys.executable).parent / "agents")
WORKERS = ("intelligence", "analysis")
HEADROOM = 0.7  # plan for 70% of a core: bursts, catch-up after a failover, AOF rewrites
STATS_FLUSH = 11.0  # an idle PostgreSQL backend reports its statistics within 10 s
_PG_STATS = (
    "SELECT d.xact_commit, t.n_tup_ins, t.n_tup_upd FROM pg_stat_database d, pg_stat_user_tables t "
    "WHERE d.datname = current_database() AND t.relname = 'task_results'"
)


def delta(after: Mapping[str, float], before: Mapping[str, float]) -> dict[str, float]:
    """Counter increments between two samples (a counter absent before counts from 0)."""
    return {key: value - before.get(key, 0.0) for key, value in after.items()}


def net_of_idle(loaded: Mapping[str, float], idle: Mapping[str, float], scale: float) -> dict[str, float]:
    """The load window's increments minus the idle window's times `scale` (load s / idle s)."""
    return {key: value - scale * idle.get(key, 0.0) for key, value in loaded.items()}


def top_commands(net: Mapping[str, float], requests: int, count: int = 15) -> dict[str, float]:
    """Redis commands per request by name, most frequent first (the bench's own INFO left out)."""
    per = {k.removeprefix("cmd:"): v / requests for k, v in net.items() if k.startswith("cmd:")}
    per.pop("info", None)
    return dict(sorted(((k, v) for k, v in per.items() if v > 0), key=lambda kv: -kv[1])[:count])


def saturation_rate(cost_per_request: float, capacity: float = 1.0) -> float:
    """Requests/s at which `capacity` (seconds of work per second: cores, or one writer) is used up."""
    if cost_per_request <= 0 or capacity <= 0:
        raise ValueError(f"cost ({cost_per_request}) and capacity ({capacity}) must be positive")
    return capacity / cost_per_request


def redis_ceiling(
    commands_per_request: float, cpu_seconds_per_request: float, headroom: float = HEADROOM
) -> dict[str, float]:
    """One Redis primary runs every command on one thread: one core is its ceiling."""
    full = saturation_rate(cpu_seconds_per_request)
    return {"requests_per_s": full, "requests_per_s_at_headroom": full * headroom,
            "commands_per_s": full * commands_per_request,
            "commands_per_s_at_headroom": full * headroom * commands_per_request}  # fmt: skip


def history_ceiling(
    rows_per_s: float, rows_per_request: float, headroom: float = HEADROOM
) -> dict[str, float]:
    """Routed requests/s whose history one writer + one PostgreSQL keep up with."""
    full = saturation_rate(rows_per_request / rows_per_s)
    return {"requests_per_s": full, "requests_per_s_at_headroom": full * headroom}


def sample(client: redis.Redis, pg_url: str, pg_pid: int, pids: Mapping[str, int]) -> dict[str, float]:
    """Every counter the report needs: one `INFO all`, pg_stat, and CPU seconds of each process."""
    info = client.info("all")
    out = {f"cmd:{k[8:]}": float(v["calls"]) for k, v in info.items() if k.startswith("cmdstat_")}
    out |= {"commands": info["total_commands_processed"], "bytes_in": info["total_net_input_bytes"],
            "bytes_out": info["total_net_output_bytes"],
            "redis_cpu": info["used_cpu_sys"] + info["used_cpu_user"]}  # fmt: skip
    with psycopg.connect(pg_url, autocommit=True) as conn:
        commits, inserted, updated = conn.execute(_PG_STATS).fetchone() or (0, 0, 0)
    out |= {"pg_commits": commits, "rows_inserted": inserted, "rows_updated": updated}
    # The postmaster's reaped children (children_user, children_system) count: a backend that exits
    out["pg_cpu"] = cpu_seconds(pg_pid) + sum(psutil.Process(pg_pid).cpu_times()[2:4])  # takes its CPU
    return {k: float(v) for k, v in out.items()} | {f"cpu:{n}": cpu_seconds(pid) for n, pid in pids.items()}


def synthetic_records(tasks: int, template: Mapping[str, Any]) -> list[str]:
    """Four records per routed request (queued by the client, queued by the router with its decision,
    processing, success), in time order as at 1,000 req/s with 0.3 s from send to success."""
    out: list[tuple[float, dict[str, Any]]] = []
    start, get = time.time(), template.get
    engine = {"task_name": "agents.analysis", "engine": "analysis"}
    for index in range(tasks):
        task_id, at = str(uuid.uuid4()), start + index / 1000
        request = {"task_id": task_id, "capability": "analysis", "task_type": "loadtest", "priority": 2,
                   "payload": get("payload") or {"data": [1, 2, 3]}}  # fmt: skip
        decision = engine | {"confidence": get("confidence"), "reason": get("reason")}
        run = {"task_id": task_id, "worker": get("worker"), "retries": 0}
        out += [
            (at, request | {"status": "queued", "task_name": "agents.route"}),
            (at + 0.003, request | decision | {"status": "queued"}),
            (at + 0.25, run | engine | {"status": "processing", "started_at": at + 0.25}),
            (at + 0.3, run | {"status": "success", "finished_at": at + 0.3, "runtime": 0.05,
                              "result": get("result")}),
        ]  # fmt: skip
    out.sort(key=lambda item: item[0])
    clean = ({k: v for k, v in r.items() if v is not None} | {"at": at} for at, r in out)
    return [json.dumps(r, separators=(",", ":")) for r in clean]


def burst(client: redis.Redis, pg_url: str, pg_pid: int, tasks: int) -> dict[str, float]:
    """Drain `tasks` synthetic requests' records through one HistoryWriter in this process."""
    from agents.names import HISTORY_PENDING_KEY
    from agents.recorder import HistoryWriter
    from agents.settings import get_settings
    from db.history import get
    from db.session import get_engine

    with psycopg.connect(pg_url, autocommit=True) as conn:
        found = conn.execute("SELECT task_id FROM task_results WHERE status = 'success' LIMIT 1").fetchone()
    records = synthetic_records(tasks, (get(found[0]) if found else None) or {})  # a real row's values
    for start in range(0, len(records), 1000):
        client.rpush(HISTORY_PENDING_KEY, *records[start : start + 1000])
    writer, batch = HistoryWriter(client, writer_id="bench-scaling-burst"), get_settings().history_batch_size
    before, began = sample(client, pg_url, pg_pid, {"writer": os.getpid()}), time.perf_counter()
    while writer.flush_once(batch):  # the writer thread's loop when a backlog is waiting
        pass
    seconds = time.perf_counter() - began
    get_engine().dispose()  # a backend reports its statistics when it exits
    time.sleep(0.5)
    used = delta(sample(client, pg_url, pg_pid, {"writer": os.getpid()}), before)
    rows = used["rows_inserted"] + used["rows_updated"]
    return {
        "requests": tasks, "records": len(records), "batch_size": batch, "seconds": seconds,
        "requests_per_s": tasks / seconds, "rows_per_s": rows / seconds,
        "rows_per_request": rows / tasks, "rows_per_commit": rows / used["pg_commits"],
        "writer_cpu_s": used["cpu:writer"], "pg_cpu_s": used["pg_cpu"], "redis_cpu_s": used["redis_cpu"],
        "pg_cpu_ms_per_request": 1000 * used["pg_cpu"] / tasks,
    }  # fmt: skip


def measure(rate: float, duration: float, burst_tasks: int) -> dict[str, Any]:
    """Idle window, routed load, then the history burst; every figure in one dict."""
    home = Path(tempfile.mkdtemp(prefix="agents-scaling-"))
    servers = [start_redis(home / "redis"), start_postgres(home / "postgres")]
    env = os.environ | {"REDIS_URL": servers[0].url, "DATABASE_URL": servers[1].url}
    env |= {"AGENTS_HOME": str(home), "HEALTH_PORT": "0"}
    os.environ.update(env)  # the burst's HistoryWriter runs in this process
    client, pg_url, pg_pid = redis.Redis.from_url(servers[0].url), servers[1].url, servers[1].process.pid
    subprocess.run([AGENTS, "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
    argv = [AGENTS, "worker", "--loglevel", "WARNING"]
    procs = {n: spawn([*argv[:2], n, *argv[2:]], env, home / f"{n}.log") for n in WORKERS}
    procs["writer"] = spawn([AGENTS, "history-writer"], env, home / "history.log")
    pids = {name: p.pid for name, p in procs.items()}
    try:
        deadline = time.monotonic() + 90
        while not all(b"[queues]" in (home / f"{n}.log").read_bytes() for n in WORKERS):
            if time.monotonic() > deadline:
                raise TimeoutError(f"workers not ready; logs in {home}")
            time.sleep(0.5)
        time.sleep(8)  # WARNING hides " ready.": past start-up work and the first heartbeats
        first, began = sample(client, pg_url, pg_pid, pids), time.monotonic()
        time.sleep(duration + STATS_FLUSH)  # the same shape as the load window below
        idle, idle_s = delta(sample(client, pg_url, pg_pid, pids), first), time.monotonic() - began
        first, began = sample(client, pg_url, pg_pid, pids), time.monotonic()
        load = [AGENTS, "loadtest", "--rate", str(rate), "--duration", str(duration), "--via", "route"]
        out = subprocess.run([*load, "--json"], cwd=ROOT, env=env, capture_output=True, text=True)
        time.sleep(STATS_FLUSH)
        loaded, load_s = delta(sample(client, pg_url, pg_pid, pids), first), time.monotonic() - began
        report = json.loads(out.stdout)
    finally:
        for process in procs.values():
            stop(process)
    try:
        history = burst(client, pg_url, pg_pid, burst_tasks)
    finally:
        stop_all(servers)
    net = net_of_idle(loaded, idle, load_s / idle_s)
    return figures(report, net, {k: v / idle_s for k, v in idle.items()}, load_s, history)


def figures(report: dict[str, Any], net: dict[str, float], idle: dict[str, float], load_s: float,
            history: dict[str, float]) -> dict[str, Any]:  # fmt: skip
    """Per-request figures (net of idle) and the projected ceilings."""
    sent, rows = int(report["sent"]), net["rows_inserted"] + net["rows_updated"]
    commands, redis_cpu = (net["commands"] - net.get("cmd:info", 0.0)) / sent, net["redis_cpu"] / sent
    per = {
        "redis_commands": commands, "redis_bytes_in": net["bytes_in"] / sent,
        "redis_bytes_out": net["bytes_out"] / sent, "redis_cpu_ms": 1000 * redis_cpu,
        "pg_rows_upserted": rows / sent, "pg_rows_inserted": net["rows_inserted"] / sent,
        "pg_commits": net["pg_commits"] / sent, "pg_cpu_ms": 1000 * net["pg_cpu"] / sent,
    } | {f"{k[4:]}_cpu_ms": 1000 * v / sent for k, v in net.items() if k.startswith("cpu:")}  # fmt: skip
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load": report,
        "idle_per_s": {k: idle[k] for k in ("commands", "bytes_in", "bytes_out", "redis_cpu", "pg_cpu")},
        "load_window_s": load_s, "per_request": per, "redis_top_per_request": top_commands(net, sent),
        "pg_under_load": {"rows_per_s": rows / load_s, "rows_per_commit": rows / net["pg_commits"]},
        "history_burst": history,
        "redis_ceiling": redis_ceiling(commands, redis_cpu),
        "history_ceiling_one_writer": history_ceiling(history["rows_per_s"], history["rows_per_request"]),
        "pg_one_core_ceiling_req_s": saturation_rate(history["pg_cpu_ms_per_request"] / 1000),
    }  # fmt: skip


def show(result: Mapping[str, Any]) -> None:
    """Each section of the figures as wrapped text, numbers to 4 significant digits."""

    def fmt(value: Any) -> str:
        if isinstance(value, Mapping):
            return ", ".join(f"{k} {fmt(v)}" for k, v in value.items())
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    print("per_request: net of the idle baseline scaled to the load window; ceilings are projections")
    for section, value in result.items():
        print(textwrap.fill(f"{section}: {fmt(value)}", 108, subsequent_indent="    "))


def main() -> None:
    """Measure once, print the figures, and write them with --json."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rate", type=float, default=300.0, help="routed requests per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load (and of idle baseline)")
    parser.add_argument("--burst", type=int, default=20000, help="synthetic requests (4 records each)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    result = measure(args.rate, args.duration, args.burst)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    show(result)


if __name__ == "__main__":
    main()
