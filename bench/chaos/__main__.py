"""`python -m bench.chaos`: run the drills, print the table, exit 1 if any scenario failed.

Usage: python -m bench.chaos [--scenario NAME ...] [--kills-scale F] [--rate R] [--dead-seconds S]
                             [--phase-scale F] [--seed N] [--write docs/reliability.md] [--json PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from agents.names import ROUTER_QUEUE
from bench.chaos import ledger
from bench.chaos.fleet import Fleet
from bench.chaos.ha_faults import HA_SCENARIOS
from bench.chaos.load import Sent, steady_load
from bench.chaos.nats_faults import nats_load
from bench.chaos.report import print_table, write_section
from bench.chaos.scenarios import SCENARIOS, Scenario, inject_all

# The load goes on this long after the last fault, so recovery happens under load too.
TAIL_SECONDS = 5.0


def skipped(name: str, why: str) -> ledger.Verdict:
    return ledger.Verdict(name, 0, 0, Counter(), 0, Counter(), 0, 0, 0, 0, None, skipped=why)


def run(scenario: Scenario, fleet: Fleet, rate: float, drain_timeout: float) -> ledger.Verdict:
    """Send a steady load for as long as the faults are being injected, then check."""
    rate = min(rate, scenario.max_rate or rate)
    began = time.monotonic()
    ledger.reset(fleet.redis)
    why = scenario.prepare(fleet) if scenario.prepare else None
    if why:
        print(f"  {scenario.name}: skipped: {why}", flush=True)
        return skipped(scenario.name, why)
    for worker in scenario.workers:
        fleet.start(worker)
    fleet.wait_consuming(("intelligence", *scenario.engines, *scenario.workers))
    faults: list[ledger.Fault] = []
    stop_at: list[float] = []
    sent: list[Sent] = []

    def stop() -> bool:
        return bool(stop_at) and time.time() >= stop_at[0]

    def load() -> None:
        if scenario.via == "nats":
            sent.append(nats_load(fleet.nats_url, rate, stop))
        else:
            sent.append(steady_load(rate, stop, scenario.capability))

    # The load runs in a thread and the faults in this one: a server restarted from a thread
    # would die with it (the servers' parent-death signal fires when the starting thread exits).
    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        inject_all(scenario, fleet, faults)
    finally:
        stop_at.append(time.time() + TAIL_SECONDS)
        loader.join()
    queues = [ROUTER_QUEUE, *scenario.engines]
    verdict = ledger.check(scenario.name, sent[0], faults, fleet.redis, queues, drain_timeout)
    verdict.loss_measured = scenario.loss_measured
    if scenario.after:
        verdict.problems += scenario.after(fleet)
    for worker in scenario.workers:
        fleet.stop_worker(worker)
    kinds = ", ".join(f"{n}x {what}" for what, n in Counter(f.what for f in faults).items())
    recoveries = " ".join(f"{r:.1f}" for r in ledger.recoveries(faults, fleet.redis))
    print(
        f"  {scenario.name}: {len(faults)} faults ({kinds}), {verdict.sent} sent, {verdict.lost} lost, "
        f"{verdict.duplicated} duplicated, recovery per fault (s): {recoveries or '-'}; "
        f"took {time.monotonic() - began:.0f} s"
        f"{'; ' if verdict.problems else ''}{'; '.join(verdict.problems)}",
        flush=True,
    )
    return verdict


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument(
        "--scenario", action="append", choices=sorted(SCENARIOS | HA_SCENARIOS), help="default: all"
    )
    parser.add_argument(
        "--ha", action="store_true", help="the failover drills on the HA topology (bench/chaos/ha_faults.py)"
    )
    parser.add_argument("--publish-replicas", type=int, default=0, help="REDIS_PUBLISH_REPLICAS (with --ha)")
    parser.add_argument("--section", default="chaos", help="the generated section of --write to replace")
    parser.add_argument("--kills-scale", type=float, default=1.0, help="scale every fault count")
    parser.add_argument("--rate", type=float, default=150.0, help="routed requests per second")
    parser.add_argument("--dead-seconds", type=float, default=30.0, help="BROKER_CONSUMER_DEAD_SECONDS")
    parser.add_argument("--postgres-down", type=float, default=30.0, help="seconds PostgreSQL stays down")
    parser.add_argument(
        "--phase-scale", type=float, default=1.0, help="scale the breaker's phases and the partition's cut"
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed of the fault moments")
    parser.add_argument("--write", type=Path, help="write the table into this markdown file")
    parser.add_argument("--json", type=Path, help="write the verdicts as JSON (for tests)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    random.seed(seed)
    catalog = HA_SCENARIOS if args.ha else SCENARIOS
    names = args.scenario or list(catalog)
    if unknown := [n for n in names if n not in catalog]:
        parser.error(f"{', '.join(unknown)}: {'not an HA drill' if args.ha else 'needs --ha'}")
    nats = any(catalog[n].via == "nats" for n in names)
    fleet = Fleet(
        args.dead_seconds, args.postgres_down, nats, args.phase_scale, args.ha, args.publish_replicas
    )
    verdicts = []
    try:
        fleet.start_all()
        print(f"chaos: {args.rate:.0f} req/s via route, seed {seed}; logs in {fleet.home}", flush=True)
        for name in names:
            base = catalog[name]
            count = max(1, round(base.count * args.kills_scale))
            scenario = dataclasses.replace(base, count=count)
            print(f"  {name}: {base.describe}, {count}x", flush=True)
            verdicts.append(run(scenario, fleet, args.rate, drain_timeout=args.dead_seconds * 2 + 60))
    finally:
        fleet.stop()
    print_table(verdicts)
    if args.write:
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        ha = f" --ha --publish-replicas {args.publish_replicas}" if args.ha else ""
        header = (
            f"Run of {stamp}: `python -m bench.chaos{ha} --rate {args.rate:g} "
            f"--kills-scale {args.kills_scale:g} --dead-seconds {args.dead_seconds:g} --seed {seed}`"
        )
        write_section(args.write, verdicts, header, args.section)
    if args.json:
        args.json.write_text(json.dumps([v.as_dict() for v in verdicts], indent=2))
    # A skipped scenario (partition without root or iproute2) is no pass, but no failure either.
    return 0 if all(v.ok or v.skipped for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
