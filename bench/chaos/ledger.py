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
    sent: dict[str, float] = field(default_factory=dict)  # ids the fault itself sent (over-limit ones)
    must_fail: dict[str, str] = field(default_factory=dict)  # id -> text its failure reason must name
    problems: list[str] = field(default_factory=list)  # what the fault's own checks found wrong


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
    problems: list[str] = field(default_factory=list)
    skipped: str | None = None  # why the scenario could not run here: neither a pass nor a failure
    loss_measured: bool = False  # a failover of asynchronous replication: its loss is the figure

    def as_dict(self) -> dict[str, object]:
        return asdict(self) | {"failed": dict(self.failed), "refused": dict(self.refused), "ok": self.ok}

    @property
    def ok(self) -> bool:
        if self.skipped:
            return False
        recovered = self.recovery_seconds is None or self.recovery_seconds <= RECOVERY_LIMIT_SECONDS
        kept = not self.lost or self.loss_measured
        clean = kept and not self.duplicated and not self.leftovers and not self.problems
        return clean and recovered


def check(
    scenario: str,
    sent: Sent,
    faults: list[Fault],
    client: redis.Redis,
    queues: list[str],
    drain_timeout: float,
) -> Verdict:
    """Wait for every accepted id to be final (or the timeout), then judge the drill."""
    scheduled = sent.accepted | {k: v for fault in faults for k, v in fault.sent.items()}
    began = time.monotonic()
    final = collect(scheduled, drain_timeout, lambda n: None)
    # Every accepted id may be final while messages are still recorded unacked under a consumer
    # the fault killed (after a Redis failover, an ack the replica never got): the sweep brings
    # them back and they run again. Judged once that settles, a second run is seen below.
    leftovers = _leftovers(client, queues)
    while leftovers and time.monotonic() - began < drain_timeout:
        time.sleep(1.0)
        leftovers = _leftovers(client, queues)
    statuses = Counter(status for status, _, _ in final.values())
    failed = Counter(f"{status}: {reason(error)}" for status, _, error in final.values() if status != SUCCESS)
    problems = [problem for fault in faults for problem in fault.problems]
    problems += wrongly_finished(faults, final)
    ids = list(scheduled)
    starts = dict(zip(ids, client.hmget(STARTS_KEY, ids), strict=True)) if ids else {}
    caught = set().union(*(fault.in_flight for fault in faults)) if faults else set()
    twice = {task_id for task_id, count in starts.items() if count and int(count) > 1}
    recovery = max(recoveries(faults, client), default=None)
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
        problems=problems,
    )


def _leftovers(client: redis.Redis, queues: list[str]) -> int:
    """Messages still queued for the drill's queues, or recorded unacked."""
    queued = sum(client.llen(key) for queue in queues for key in queue_keys(queue))
    return int(client.hlen("unacked")) + queued


def recoveries(faults: list[Fault], client: redis.Redis) -> list[float]:
    """Each fault's recovery: until what it caught in flight started again, or its probe finished."""
    runs = run_starts(client)
    held_at = caught_at(faults)
    found = []
    for fault in faults:
        times = [running_again(fault, runs, held_at)]
        times.append(None if fault.recovered_at is None else fault.recovered_at - fault.at)
        if any(t is not None for t in times):
            found.append(max(t for t in times if t is not None))
    return found


def reason(error: object) -> str:
    """The failure's kind: the recorded error up to its first colon (an exception's name)."""
    return str(error).split(":", 1)[0] if error else "?"


def wrongly_finished(faults: list[Fault], final: dict[str, tuple[str, object, object]]) -> list[str]:
    """Requests a fault sent to fail (over a time limit) that succeeded, or failed for another
    reason than the one named."""
    problems = []
    for fault in faults:
        for task_id, expected in fault.must_fail.items():
            status, _, error = final.get(task_id, (None, None, None))
            if status is None:
                continue  # counted as lost
            if status == SUCCESS or expected not in str(error):
                problems.append(f"{task_id} ({fault.what}): {status} {str(error)[:120]!r}, not {expected}")
    return problems


def reset(client: redis.Redis) -> None:
    """Forget the previous scenario's run counts."""
    client.delete(STARTS_KEY, FINISHES_KEY, RUNS_KEY)


def run_starts(client: redis.Redis) -> dict[str, list[float]]:
    """Start times of every handler run, by task id."""
    starts: dict[str, list[float]] = {}
    for entry in client.lrange(RUNS_KEY, 0, -1):
        task_id, at = (entry.decode() if isinstance(entry, bytes) else entry).split("|")[:2]
        starts.setdefault(task_id, []).append(float(at))
    return starts


def runs_by_engine(client: redis.Redis, since: float, until: float | None = None) -> Counter[str]:
    """How many handler runs each engine started in [since, until)."""
    counts: Counter[str] = Counter()
    for entry in client.lrange(RUNS_KEY, 0, -1):
        _, at, engine = (entry.decode() if isinstance(entry, bytes) else entry).split("|")
        if float(at) >= since and (until is None or float(at) < until):
            counts[engine] += 1
    return counts


def caught_at(faults: list[Fault]) -> dict[str, list[float]]:
    """When each request was held by a faulted consumer: it had been delivered again by then."""
    held: dict[str, list[float]] = {}
    for fault in faults:
        for task_id in fault.in_flight:
            held.setdefault(task_id, []).append(fault.at)
    return held


def running_again(
    fault: Fault, starts: dict[str, list[float]], held_at: dict[str, list[float]]
) -> float | None:
    """Seconds from the fault until every request it caught in flight had started again: its first
    handler start after the fault, or, if a later fault caught it first, that fault (it had been
    handed out again by then). So a chain of kills catching the same request counts once per kill.
    A request never started before the fault counts from its first start."""
    latest = None
    for task_id in fault.in_flight:
        after = [at for at in starts.get(task_id, []) if at > fault.at]
        after += [at for at in held_at.get(task_id, []) if at > fault.at]
        if after:
            latest = max(latest or 0.0, min(after) - fault.at)
    return latest


def now() -> float:
    return time.time()
