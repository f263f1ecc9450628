"""The ledger of a drill: every id sent (kept in the drill's own process, outside the servers it
faults) checked against `task_results`, the engine's run counts and the queues left behind."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field

import redis

from agents.loadtest import collect
from agents.names import queue_keys
from agents.statuses import SUCCESS
from bench.chaos.engine import FINISHES_KEY, RUNS_KEY, STARTS_KEY
from bench.chaos.load import Sent

# A killed worker's reserved messages must run again within this long of its death.
RECOVERY_LIMIT_SECONDS = 90.0


@dataclass
class Fault:
    """One injected fault: when, what, and the requests in flight on its target at that moment."""

    at: float
    what: str
    in_flight: set[str] = field(default_factory=set)
    recovered_at: float | None = None  # set by faults of servers: when every worker consumed again


@dataclass
class Verdict:
    """One row of the chaos table."""

    scenario: str
    faults: int
    sent: int
    refused: Counter[str]  # publishes that raised: the caller was told, so not accepted
    succeeded: int
    failed: Counter[str]
    lost: int
    rerun: int  # ran again after a fault caught them in flight: allowed
    duplicated: int  # ran twice without a fault catching them: never allowed
    leftovers: int  # messages still queued or unacked after the drain
    recovery_seconds: float | None

    def as_dict(self) -> dict[str, object]:
        return asdict(self) | {"failed": dict(self.failed), "refused": dict(self.refused), "ok": self.ok}

    @property
    def ok(self) -> bool:
        recovered = self.recovery_seconds is None or self.recovery_seconds <= RECOVERY_LIMIT_SECONDS
        return not self.lost and not self.duplicated and not self.leftovers and recovered


def check(
    scenario: str,
    sent: Sent,
    faults: list[Fault],
    client: redis.Redis,
    queues: list[str],
    drain_timeout: float,
) -> Verdict:
    """Wait for every accepted id to be final (or the timeout), then judge the drill."""
    scheduled = sent.accepted
    final = collect(scheduled, drain_timeout, lambda n: None)
    statuses = Counter(status for status, _, _ in final.values())
    failed = Counter(
        f"{status}: {str(error).split(':', 1)[0] if error else '?'}"
        for status, _, error in final.values()
        if status != SUCCESS
    )
    ids = list(scheduled)
    starts = dict(zip(ids, client.hmget(STARTS_KEY, ids), strict=True)) if ids else {}
    caught = set().union(*(fault.in_flight for fault in faults)) if faults else set()
    twice = {task_id for task_id, count in starts.items() if count and int(count) > 1}
    queued = sum(client.llen(key) for queue in queues for key in queue_keys(queue))
    leftovers = client.hlen("unacked") + queued
    recovery = None
    runs = run_starts(client)
    for fault in faults:
        again = running_again(fault, runs)
        if again is not None:
            recovery = max(recovery or 0.0, again)
        if fault.recovered_at is not None:
            recovery = max(recovery or 0.0, fault.recovered_at - fault.at)
    return Verdict(
        scenario=scenario,
        faults=len(faults),
        sent=len(scheduled),
        refused=Counter(sent.refused.values()),
        succeeded=statuses.get(SUCCESS, 0),
        failed=failed,
        lost=len(scheduled) - len(final),
        rerun=len(twice & caught),
        duplicated=len(twice - caught),
        leftovers=leftovers,
        recovery_seconds=recovery,
    )


def reset(client: redis.Redis) -> None:
    """Forget the previous scenario's run counts."""
    client.delete(STARTS_KEY, FINISHES_KEY, RUNS_KEY)


def run_starts(client: redis.Redis) -> dict[str, list[float]]:
    """Start times of every handler run, by task id."""
    starts: dict[str, list[float]] = {}
    for entry in client.lrange(RUNS_KEY, 0, -1):
        task_id, at = (entry.decode() if isinstance(entry, bytes) else entry).split("|")
        starts.setdefault(task_id, []).append(float(at))
    return starts


def running_again(fault: Fault, starts: dict[str, list[float]]) -> float | None:
    """Seconds from the fault until every request it caught in flight had started again (a
    request never started before it counts from its first start): the recovery the issue asks
    for, which a chain of faults catching the same request does not stretch."""
    latest = None
    for task_id in fault.in_flight:
        after = [at for at in starts.get(task_id, []) if at > fault.at]
        if after:
            latest = max(latest or 0.0, min(after) - fault.at)
    return latest


def now() -> float:
    return time.time()
