"""Bad raw messages pushed with LPUSH straight onto queues a real worker consumes.

Each example pushes one batch (tests/fuzz/examples.py: garbage of every kind, 1-4 valid requests,
one batch in ten a 0.5-2 MB message) onto the router queue (a batch task) or the counter
engine's queue (Celery's own strategy) of the session's fleet, then checks that the worker still
answers, every valid request ran once and has its final history row, nothing of the batch is
left queued or unacked, every message with no kombu envelope is in agents:broker:malformed and
only those (or ones allowed anything), and refused messages never ran.

The poison this fuzzing found (17 cases, fixed since: docs/next.md) stays as `test_known_poison`,
run against private workers in Redis databases of their own (13-15) so the session's fleet would
survive a regression: each case's message must end where it says (moved to the malformed list,
refused unrun, or run) while the worker stays up and a canary sent after it runs.
"""

from __future__ import annotations

import base64
import json
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from agents.names import BROKER_CONSUMERS_KEY, BROKER_MALFORMED_KEY, queue_keys
from agents.names import PRUNE_REGISTRY_TASK as PRUNE
from tests.conftest import spawn_worker, stop_worker, wait_for_history
from tests.engines import COUNTS_KEY
from tests.fuzz import examples as ex
from tests.fuzz.examples import ENGINE, ROUTER, Input

pytestmark = pytest.mark.servers
UNACKED_KEY = "unacked"  # kombu's hash: delivery tag -> message taken, not yet acked
DRAIN_SECONDS = 30.0


@pytest.fixture(scope="module")
def sent(request: pytest.FixtureRequest) -> Iterator[dict[str, int]]:
    yield from ex.reporting(request)


def drained(client: Any, tags: list[str], timeout: float = DRAIN_SECONDS) -> None:
    """Wait until the queues the batch reached are empty and none of its messages is unacked."""
    keys = [key for queue in (ROUTER, ENGINE) for key in queue_keys(queue)]
    deadline = time.monotonic() + timeout
    while True:
        queued = sum(client.llen(key) for key in keys)
        unacked = [tag for tag, raw in zip(tags, client.hmget(UNACKED_KEY, tags), strict=True) if raw]
        if not queued and not unacked:
            return
        assert time.monotonic() < deadline, f"stuck: {queued} queued, unacked {unacked}"
        time.sleep(0.1)


@pytest.mark.parametrize("queue", [ROUTER, ENGINE])
@ex.LIVE_TIMEOUT
@ex.FUZZ
@given(data=st.data())
def test_a_batch_of_garbage_never_stops_the_queue(
    fleet: str, redis_client: Any, sent: dict[str, int], queue: str, data: st.DataObject
) -> None:
    from db import history
    from tasks import app

    inputs = [item.realise() for item in data.draw(ex.batches(queue), label="batch")]
    redis_client.delete(BROKER_MALFORMED_KEY)
    pipe = redis_client.pipeline(transaction=False)
    for item in inputs:
        pipe.lpush(queue_keys(queue)[0], item.raw)
    pipe.execute()
    sent[queue] = sent.get(queue, 0) + len(inputs)

    valid = [item.task_id for item in inputs if item.expect == ex.VALID]
    rows = wait_for_history(valid, timeout=30)
    assert {tid: row["status"] for tid, row in rows.items()} == dict.fromkeys(valid, "success")
    drained(redis_client, [item.tag for item in inputs])
    assert redis_client.hmget(COUNTS_KEY, valid) == [b"1"] * len(valid), "a valid request did not run once"
    moved = Counter(redis_client.lrange(BROKER_MALFORMED_KEY, 0, -1))
    must = Counter(item.raw for item in inputs if item.expect == ex.MALFORMED)
    may = Counter(item.raw for item in inputs if item.expect == ex.ANY)
    assert not must - moved, "a message without a kombu envelope is neither queued nor set aside"
    assert not (moved - must) - may, "a refused or valid message was set aside as malformed"
    for item in inputs:
        if item.expect == ex.REFUSED:
            assert redis_client.hget(COUNTS_KEY, item.task_id) is None, f"{item.kind} ran"
            assert history.get(item.task_id) is None, f"{item.kind} has a history row"
    assert app.control.ping(destination=[fleet], timeout=5), "the fleet worker no longer answers"
    redis_client.delete(BROKER_MALFORMED_KEY)


# -- known poison, on private workers ----------------------------------------------------------

SURVIVAL_SECONDS = 6.0
# A request each queue's engine runs without side effects, sent after the poison: it must finish.
CANARY_ARGS: dict[str, list[Any]] = {
    "intelligence": [{"capability": "routing", "payload": {"capability": "routing"}}],
    "analysis": [{"payload": {"data": [1, 2]}}],
    "counter": [{"payload": {}}],
    "flaky": [{"payload": {}}],
    "performance": [{"payload": {"metrics": {"cpu": [40, 95]}, "thresholds": {"cpu": 90}}}],
    "maintenance": [],
}


def _set(where: str, name: str, value: Any) -> Callable[[str], bytes]:
    return lambda queue: ex.edited(queue, where, name, value)


def _body(text: str, **fields: Any) -> Callable[[str], bytes]:
    return lambda queue: ex.encode(ex.envelope(queue) | {"body": text} | fields)


def _raw(text: bytes) -> Callable[[str], bytes]:
    """A header whose value is `text` as is (JSON that json.dumps would never write)."""
    return lambda queue: ex.edited(queue, "headers", "x-fuzz", ex.MARK, text)


@dataclass(frozen=True)
class Poison:
    """An exact input, the private worker's database and queue, what it did before its fix, and
    where it must end: in the malformed list, refused unrun, or run (VALID)."""

    db: int
    queue: str
    build: Callable[[str], bytes]
    was: str = ""  # empty: the control case
    ends: str = ex.MALFORMED
    history: bool = False  # the worker writes its history too: the canary must get its row
    also: str = ""  # a second queue for the worker (where the first one's tasks publish)


POISON = {
    "control": Poison(15, "flaky", lambda _: b"\xffnot a message"),
    "body_encoding": Poison(13, "counter", _body("!!!notbase64="),
        "body_encoding base64 with a body that is not base64 (also 'rot13', or 5): kombu's Message() "
        "raises in ReliableChannel._brpop_read, the worker exits (Unrecoverable error) and the message, "
        "restored to its queue, kills the next worker"),
    "headers_not_object": Poison(13, "flaky", _set("", "headers", ["x"]),
        "headers a JSON array (or string, number): kombu's Message() raises, the worker exits, and the "
        "restore fails (Could not restore message): the message is lost"),
    "delivery_info_array": Poison(13, "intelligence", _set("properties", "delivery_info", [1]),
        "properties.delivery_info a non-empty array passes FETCH (cjson decodes arrays as tables); "
        "tasks/refusals.py queue_of raises AttributeError counting its refusal and the worker exits (on "
        "a per-request queue Celery raises first, and the restore fails: the message is lost)"),
    "task_unhashable": Poison(13, "performance", _set("headers", "task", ["agents.route"]),
        "headers.task an array or object: TypeError in Celery's on_task_received, the worker exits, "
        "the message is restored and kills the next worker", ends=ex.REFUSED),
    "id_unhashable_batch": Poison(13, "analysis", _set("headers", "id", ["x"]),
        "headers.id an array on a batch task: TypeError in the revoked check (Error in timer), the "
        "message stays unacked and the worker takes nothing more from the queue", ends=ex.REFUSED),
    "deep_nesting_pickle": Poison(13, "maintenance", _raw(ex.nested(600).encode()),
        "a header nested 600 deep on a per-request task: RecursionError pickling the job for the "
        "pool, the worker exits, the message is restored", ends=ex.REFUSED),
    "history_refused_record": Poison(14, "intelligence", _set("headers", "id", "x" * 300),
        "a task id over 200 characters (also: one with a NUL; a lone surrogate such as \\udc00 in a payload; "
        "through route.delay NaN, Infinity or a NUL in a payload, a capability or task_type over 64 "
        "characters; through NATS a NUL in an event body): PostgreSQL refuses the history "
        "record and the writer retries that batch forever, so no later task gets a history row",
        ends=ex.VALID, history=True),
    "id_missing": Poison(14, "flaky", _set("headers", "id", ex.DROP),
        "headers without id on a per-request task: KeyError('id') handled as a connection loss; the "
        "consumer reconnects every second and re-fetches it: the queue is stuck", ends=ex.REFUSED),
    "timelimit_not_pair": Poison(14, "performance", _set("headers", "timelimit", 5),
        "headers.timelimit not [soft, hard] (5, 'ab', [1, 2, 3]) on a per-request task: Celery's "
        "Request raises, the worker exits, the message is restored", ends=ex.REFUSED),
    "body_not_triple": Poison(14, "maintenance", _body(base64.b64encode(b"{}").decode()),
        "a body that is not [args, kwargs, embed] (also content-type application/data, or '') on a "
        "per-request task: unpack error in Celery's Request(), the worker exits, restored", ends=ex.REFUSED),
    "deep_nesting_fetch": Poison(14, "analysis", _raw(ex.nested(995).encode()),
        "JSON nested 995 deep (cjson accepts up to 1000): RecursionError in ReliableChannel._brpop_read, "
        "the worker exits and the message stays in unacked (its restore fails too)"),
    "cjson_only_json": Poison(15, "maintenance", _raw(b'"a\x01"'),
        "JSON that FETCH's cjson accepts and Python's json refuses (a raw control character or newline in a "
        "string; numbers 0x10, +1, 01, 1., nan, inf): JSONDecodeError in ReliableChannel._brpop_read, the "
        "worker exits and the message stays in unacked (its restore fails too)"),
    "history_record_without_id": Poison(15, "performance", _set("headers", "id", None),
        "headers.id null on a per-request task: its lifecycle record has no task_id, merge() raises "
        "KeyError in the history writer's thread, which dies: the process runs on, writing nothing",
        ends=ex.REFUSED, history=True),
    "fetch_script_error": Poison(15, "analysis", _set("info", "exchange", float("nan")),
        "delivery_info.exchange (or routing_key) NaN or Infinity: FETCH's cjson.encode fails half-way and "
        "Redis keeps the script's earlier writes: the messages popped after it (the canary here) are in "
        "no list, LOST; the worker exits on the ResponseError (Unrecoverable error)"),
    "expires_forwarded": Poison(15, "intelligence", _set("headers", "expires", ""), "headers.expires '' or "
        "{} (any falsy value but null and false) on a per-request task: AttributeError in Celery's Request "
        "(maybe_make_aware(None)), the worker exits; the router forwards expires to the engine's task, so "
        "a routed request carrying it kills the engine's worker", ends=ex.REFUSED, also=ENGINE),
    "stamped_headers_unhashable": Poison(13, "counter", _set("headers", "stamped_headers", [{}]),
        "headers.stamped_headers with an object in it on a per-request task (found at FUZZ_EXAMPLES=250): "
        "TypeError in Celery's Request.revoked (stamp in revoked_stamps), the worker exits", ends=ex.REFUSED),
    "content_encoding_not_text": Poison(14, "counter", _set("", "content-encoding", 5),
        "content-encoding a number on a per-request task: AttributeError in kombu's loads, the "
        "worker exits, the message is restored"),
}  # fmt: skip


@dataclass
class Trial:
    """One case's private worker, the Redis database it consumes, and what was pushed there."""

    name: str
    process: Any
    client: redis.Redis
    poison: Input
    canary: Input
    pushed_at: float = 0.0


def private_url(db: int) -> str:
    """The session's Redis, another database number."""
    from agents.settings import get_settings

    return get_settings().redis_url.rsplit("/", 1)[0] + f"/{db}"


def start_trial(name: str, case: Poison) -> Trial:
    """A prefork worker (-c 1) on the case's queue; the history case's worker also writes its
    database's history to the session's PostgreSQL (HISTORY_WRITER_IN_WORKERS)."""
    env = {"REDIS_URL": private_url(case.db)}
    if case.history:
        env["HISTORY_WRITER_IN_WORKERS"] = "true"
    queues = ",".join(filter(None, [case.queue, case.also]))
    argv = [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-Q", queues,
            "-n", f"poison-{name}@localhost", "-c", "1", "-P", "prefork", "--loglevel", "INFO"]  # fmt: skip
    canary = Input(ex.encode(ex.envelope(case.queue, CANARY_ARGS[case.queue])), "canary", ex.VALID)
    poison = Input(case.build(case.queue), name, ex.ANY)
    if case.queue == "maintenance":  # its tasks are the maintenance jobs, not an engine's
        canary, poison = (replace(i, raw=i.raw.replace(b"agents.engine.maintenance", PRUNE.encode()))
            for i in (canary, poison))  # fmt: skip
    return Trial(name, spawn_worker(argv, f"poison-{name}", **env), redis.Redis.from_url(env["REDIS_URL"]),
        poison.realise(), canary.realise())  # fmt: skip


def consuming(trial: Trial) -> bool:
    """The worker's broker consumer has heartbeated (its id starts with host:pid)."""
    prefix = f"{socket.gethostname()}:{trial.process.pid}:".encode()
    consumers: list[bytes] = trial.client.zrange(BROKER_CONSUMERS_KEY, 0, -1)  # type: ignore[assignment]
    return any(c.startswith(prefix) for c in consumers)


@pytest.fixture(scope="module")
def trials(redis_server: Any, postgres_server: Any) -> Iterator[dict[str, Trial]]:
    """Every case's worker started at once; once all consume, each gets its poison, then a canary."""
    dbs = {case.db for case in POISON.values()}
    for db in dbs:
        redis.Redis.from_url(private_url(db)).flushdb()
    started = {name: start_trial(name, case) for name, case in POISON.items()}
    try:
        deadline = time.monotonic() + 90
        while not all(consuming(t) or t.process.poll() is not None for t in started.values()):
            assert time.monotonic() < deadline, "private workers did not start"
            time.sleep(0.2)
        for trial in started.values():
            key = queue_keys(POISON[trial.name].queue)[0]
            trial.client.lpush(key, trial.poison.raw, trial.canary.raw)
            trial.pushed_at = time.monotonic()
        yield started
    finally:
        for trial in started.values():
            if trial.process.poll() is None:
                trial.process.terminate()
        for trial in started.values():
            stop_worker(trial.process, timeout=10)
        for db in dbs:
            redis.Redis.from_url(private_url(db)).flushdb()


def problem_of(trial: Trial) -> str | None:
    """None once the canary succeeded (and has its history row) with nothing left queued or
    unacked and the worker running; else what went wrong, when it went wrong or at the deadline."""
    from db import history

    case = POISON[trial.name]
    keys = [key for queue in filter(None, [case.queue, case.also]) for key in queue_keys(queue)]
    tags = [trial.poison.tag, trial.canary.tag]
    while True:
        if trial.process.poll() is not None:
            return f"the worker exited (code {trial.process.returncode}); see poison-{trial.name}.log"
        meta = trial.client.get(f"celery-task-meta-{trial.canary.task_id}")
        done = meta is not None and json.loads(meta)["status"] == "SUCCESS"
        recorded = not case.history or history.get(trial.canary.task_id) is not None
        queued = sum(trial.client.llen(key) for key in keys)
        held = sum(1 for raw in trial.client.hmget(UNACKED_KEY, tags) if raw)
        if done and recorded and not queued and not held:
            return None
        if time.monotonic() > trial.pushed_at + SURVIVAL_SECONDS:
            return f"stuck: canary done {done}, history row {recorded}, {queued} queued, {held} unacked"
        time.sleep(0.2)


@pytest.mark.parametrize("name", list(POISON))
def test_known_poison(trials: dict[str, Trial], name: str) -> None:
    from db import history

    trial, case = trials[name], POISON[name]
    problem = problem_of(trial)
    assert problem is None, f"{name} (before its fix: {case.was or 'control'}): {problem}"
    moved = trial.poison.raw in trial.client.lrange(BROKER_MALFORMED_KEY, 0, -1)
    assert moved == (case.ends == ex.MALFORMED), f"{name}: set aside {moved}, must end {case.ends}"
    if case.ends == ex.REFUSED:
        assert trial.client.get(f"celery-task-meta-{trial.poison.task_id}") is None, f"{name} ran"
    if case.ends == ex.VALID:  # its history record is refused by PostgreSQL: set aside, the writer goes on
        assert history.get(trial.poison.task_id) is None
