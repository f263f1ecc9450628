"""One pipeline, three execution paths, the same observable life.

Every case runs on a per-request engine (`flaky`, Celery's tracer), a batch engine (`batchy`,
a batch task) and through the router (`route` to `batchy`). Each asserts what a user can see: the
`task_results` row, the result backend, the breaker sample, the Flower event, and what the probe
hook (tests/hooks.py, registered through AGENT_HOOKS) saw. Where the paths differ by design, the
case says so.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from celery import chain, chord
from celery.exceptions import SoftTimeLimitExceeded, TaskRevokedError, TimeLimitExceeded
from celery.result import AsyncResult

from agents.errors import TransientError, UnknownCapability
from agents.names import PUBLISH_ID_HEADER, REPLY_SUBJECT_HEADER, stats_key
from tests.conftest import wait_for_history
from tests.engines import ERRBACKS_KEY
from tests.hooks import probed

pytestmark = pytest.mark.servers


@dataclass(frozen=True)
class Path:
    """How a request reaches its engine, and what that engine's limits are."""

    name: str
    engine: str
    max_retries: int
    hard_limit: int

    @property
    def hooks_path(self) -> str:
        """How the probe hook labels the outcome: Celery's tracer or a batch task."""
        return "tracer" if self.name == "request" else "batch"

    def signature(self, payload: dict[str, Any]) -> Any:
        from tasks import engine_task, route

        if self.name == "router":
            return route.s({"capability": "batching", "payload": payload})
        return engine_task(self.engine).s({"payload": payload})

    def submit(self, payload: dict[str, Any], **options: Any) -> AsyncResult:
        return self.signature(payload).apply_async(**options)


PATHS = [
    Path("request", "flaky", max_retries=3, hard_limit=3),
    Path("batch", "batchy", max_retries=2, hard_limit=4),
    Path("router", "batchy", max_retries=2, hard_limit=4),
]


@pytest.fixture(params=PATHS, ids=[p.name for p in PATHS])
def path(request: pytest.FixtureRequest, batch_worker: None, redis_client: Any) -> Path:
    return request.param


def breaker_samples(redis_client: Any, engine: str) -> tuple[int, int]:
    """(succeeded, failed) samples recorded for an engine since the test began."""
    succeeded, failed = redis_client.hmget(stats_key(engine), "succeeded", "failed")
    return int(succeeded or 0), int(failed or 0)


def outcomes_seen(task_id: str) -> list[str]:
    """The probe's outcome records of one task id, e.g. ['outcome:success:batch']."""
    return [entry for entry in probed(task_id) if entry.startswith("outcome:")]


def wait_for(check: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(f"{what} not reached within {timeout}s")


def test_success(path: Path, redis_client: Any, task_events: Any) -> None:
    result = path.submit({})
    assert result.get(timeout=30) == {"ok": True, "task_id": result.id}
    row = wait_for_history([result.id])[result.id]
    assert (row["status"], row["error"], row["retries"]) == ("success", None, 0)
    assert row["runtime"] >= 0 and row["engine"] == path.engine
    assert result.state == "SUCCESS"
    assert breaker_samples(redis_client, path.engine) == (1, 0)
    assert task_events.outcome(result.id) == "task-succeeded"
    assert outcomes_seen(result.id) == [f"outcome:success:{path.hooks_path}"]


def test_permanent_failure(path: Path, redis_client: Any, task_events: Any) -> None:
    result = path.submit({"fail": True})
    with pytest.raises(RuntimeError, match="asked to fail"):
        result.get(timeout=30)
    row = wait_for_history([result.id])[result.id]
    assert (row["status"], row["error"], row["retries"]) == ("failed", "RuntimeError: asked to fail", 0)
    assert row["runtime"] >= 0
    assert result.state == "FAILURE"
    assert breaker_samples(redis_client, path.engine) == (0, 1)
    assert task_events.outcome(result.id) == "task-failed"
    assert outcomes_seen(result.id) == [f"outcome:failed:{path.hooks_path}"]


def test_transient_failure_then_success(path: Path, redis_client: Any, task_events: Any) -> None:
    result = path.submit({"transient_failures": 1})
    assert result.get(timeout=30)["ok"] is True
    row = wait_for_history([result.id])[result.id]
    assert (row["status"], row["retries"]) == ("success", 1)
    assert "asked to fail transiently" in row["error"]  # the retry's reason stays on the row
    assert result.state == "SUCCESS"
    assert breaker_samples(redis_client, path.engine) == (1, 1)
    assert task_events.types(result.id) == ["task-retried", "task-succeeded"]
    assert outcomes_seen(result.id) == [
        f"outcome:retrying:{path.hooks_path}",
        f"outcome:success:{path.hooks_path}",
    ]


def test_retries_exhausted(path: Path, redis_client: Any, task_events: Any) -> None:
    result = path.submit({"transient_failures": 100})
    with pytest.raises(TransientError, match="asked to fail transiently"):
        result.get(timeout=60)
    row = wait_for_history([result.id])[result.id]
    assert (row["status"], row["retries"]) == ("failed", path.max_retries)
    assert row["error"] == "TransientError: asked to fail transiently"
    assert result.state == "FAILURE"
    assert breaker_samples(redis_client, path.engine) == (0, path.max_retries + 1)
    assert task_events.types(result.id) == ["task-retried"] * path.max_retries + ["task-failed"]
    assert outcomes_seen(result.id) == [f"outcome:retrying:{path.hooks_path}"] * path.max_retries + [
        f"outcome:failed:{path.hooks_path}"
    ]


def test_soft_time_limit(path: Path, redis_client: Any, task_events: Any) -> None:
    result = path.submit({"sleep": 30})
    with pytest.raises(SoftTimeLimitExceeded):
        result.get(timeout=30)
    row = wait_for_history([result.id])[result.id]
    assert (row["status"], row["error"]) == ("failed", "SoftTimeLimitExceeded: soft time limit exceeded")
    assert result.state == "FAILURE"
    assert breaker_samples(redis_client, path.engine) == (0, 1)
    assert task_events.outcome(result.id) == "task-failed"
    assert outcomes_seen(result.id) == [f"outcome:failed:{path.hooks_path}"]


def test_hard_time_limit(path: Path, redis_client: Any, task_events: Any) -> None:
    result = path.submit({"ignore_soft_limit": True})
    with pytest.raises(TimeLimitExceeded):
        result.get(timeout=30)
    row = wait_for_history([result.id])[result.id]
    assert row["status"] == "failed"
    assert row["error"] == f"TimeLimitExceeded: hard time limit ({path.hard_limit}s) exceeded"
    assert result.state == "FAILURE"
    # The pool process was killed mid-run: no runtime is known, so no breaker sample either.
    assert breaker_samples(redis_client, path.engine) == (0, 0)
    assert task_events.outcome(result.id) == "task-failed"
    # A hard limit is reported by the worker's main process: Celery's there, the batcher's here.
    assert outcomes_seen(result.id) == [f"outcome:failed:{path.hooks_path}"]


def test_revoked_before_it_runs(path: Path, redis_client: Any, task_events: Any) -> None:
    from tasks import app

    task_id = str(uuid.uuid4())
    app.control.revoke(task_id)
    time.sleep(1)  # the revoke is a broadcast: every worker has it before the message arrives
    result = path.submit({}, task_id=task_id)
    with pytest.raises(TaskRevokedError):
        result.get(timeout=30)
    row = wait_for_history([task_id])[task_id]
    assert (row["status"], row["error"]) == ("revoked", "revoked: revoked before it ran")
    assert result.state == "REVOKED"
    assert breaker_samples(redis_client, path.engine) == (0, 0)
    assert task_events.outcome(task_id) == "task-revoked"
    assert outcomes_seen(task_id) == [f"outcome:revoked:{path.hooks_path}"]


def test_duplicate_bridged_publish_runs_once(path: Path, redis_client: Any, task_events: Any) -> None:
    task_id = str(uuid.uuid4())
    first = path.submit({}, task_id=task_id, headers={PUBLISH_ID_HEADER: f"{task_id}-a"})
    assert first.get(timeout=30)["ok"] is True
    # The bridge crashed before its marker: the same event was published again, with its own id.
    path.submit({}, task_id=task_id, headers={PUBLISH_ID_HEADER: f"{task_id}-b"})
    wait_for(lambda: "skip" in probed(task_id), what="second publish skipped")
    assert wait_for_history([task_id])[task_id]["status"] == "success"
    assert AsyncResult(task_id).state == "SUCCESS"
    assert breaker_samples(redis_client, path.engine) == (1, 0)
    assert outcomes_seen(task_id) == [f"outcome:success:{path.hooks_path}"]


def test_bridged_request_gets_its_reply(path: Path, nats_server: Any, redis_client: Any) -> None:
    import nats

    from agents.settings import get_settings

    async def scenario() -> tuple[dict[str, Any], str]:
        client = await nats.connect(get_settings().nats_url)
        try:
            inbox = client.new_inbox()
            replies = await client.subscribe(inbox)
            await client.flush()
            result = path.submit({"n": 7}, headers={REPLY_SUBJECT_HEADER: inbox})
            reply = await replies.next_msg(timeout=30)
            import json

            return json.loads(reply.data), result.id
        finally:
            await client.close()

    reply, task_id = asyncio.run(scenario())
    assert reply == {"task_id": task_id, "status": "success", "result": {"ok": True, "task_id": task_id}}
    assert wait_for_history([task_id])[task_id]["status"] == "success"


def test_chain_goes_on_to_the_next_step(path: Path, redis_client: Any) -> None:
    from tasks import engine_task

    first = path.signature({"then": {"task_type": "next-step", "payload": {"n": 1}}})
    result = chain(first, engine_task("counter").s()).apply_async()
    assert result.get(timeout=30) == {"task_type": "next-step", "payload": {"n": 1}}
    assert wait_for_history([result.parent.id])[result.parent.id]["status"] == "success"


def test_link_callback_gets_the_result(path: Path, redis_client: Any) -> None:
    from tasks import engine_task

    callback_id = str(uuid.uuid4())
    callback = engine_task("counter").s().set(task_id=callback_id)
    result = path.submit({"then": {"task_type": "linked", "payload": {"n": 2}}}, link=callback)
    assert result.get(timeout=30) == {"task_type": "linked", "payload": {"n": 2}}
    assert AsyncResult(callback_id).get(timeout=30) == {"task_type": "linked", "payload": {"n": 2}}


def test_link_error_errback_runs(path: Path, redis_client: Any) -> None:
    from tests.engines import record_errback

    result = path.submit({"fail": True}, link_error=record_errback.s())
    with pytest.raises(RuntimeError):
        result.get(timeout=30)
    recorded = wait_for(lambda: redis_client.hget(ERRBACKS_KEY, result.id), what="errback ran")
    assert recorded.decode() == "RuntimeError: asked to fail"


def test_chord_collects_every_part(path: Path, redis_client: Any) -> None:
    from tests.engines import collect

    parts = [path.signature({"then": {"task_type": "part", "payload": {"n": n}}}) for n in range(3)]
    result = chord(parts)(collect.s())
    assert result.get(timeout=30) == [{"task_type": "part", "payload": {"n": n}} for n in range(3)]


def test_a_registered_hook_sees_every_step_of_every_path(path: Path, redis_client: Any) -> None:
    """The probe hook is one class named in AGENT_HOOKS: it sees the publish, the start and the
    outcome of a request on every path, with nothing else to wire."""
    result = path.submit({})
    result.get(timeout=30)
    engine_task = f"agents.engine.{path.engine}"
    steps = wait_for(lambda: (seen := probed(result.id)) and seen[-1].startswith("outcome:") and seen)
    expected = [f"publish:{engine_task}", f"before:{engine_task}", f"outcome:success:{path.hooks_path}"]
    if path.name == "router":  # the routing task's own publish and start come first
        expected = ["publish:agents.route", "before:agents.route", *expected]
    assert steps == expected


def test_router_refusal_runs_the_errback(batch_worker: None, redis_client: Any) -> None:
    """Only the router refuses requests; its refusals take the same follow-up steps."""
    from tasks import route
    from tests.engines import record_errback

    result = route.apply_async(({"capability": "teleport"},), link_error=record_errback.s())
    with pytest.raises(UnknownCapability):
        result.get(timeout=30)
    recorded = wait_for(lambda: redis_client.hget(ERRBACKS_KEY, result.id), what="errback ran")
    assert recorded.decode().startswith("UnknownCapability: no engine offers capability 'teleport'")
    assert outcomes_seen(result.id) == ["outcome:rejected:batch"]
