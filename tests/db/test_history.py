"""task_results upserts and the seed's own runbook queries, on a real PostgreSQL."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text

from agents.lifecycle import merge
from db import history, raw
from db.session import get_engine

pytestmark = pytest.mark.servers
# Copied from the seed's daily_checks.sh, unchanged.
SEED_STATUS_QUERY = (
    "SELECT status, COUNT(*) FROM task_results WHERE created_at > NOW() - INTERVAL '1 hour' GROUP BY status;"
)


def ev(task_id: str, status: str, at: float, **fields: object) -> dict[str, object]:
    return {"task_id": task_id, "status": status, "at": at, **fields}


def test_upsert_merges_batches_by_the_lifecycle_rules(postgres_server) -> None:
    tid, now = f"h-{uuid.uuid4()}", time.time()
    history.upsert(merge([ev(tid, "processing", now, started_at=now, worker="w1")]).values())
    history.upsert(merge([ev(tid, "success", now + 1, finished_at=now + 1, result={"ok": 1})]).values())
    # A late stage from another process must not undo the outcome.
    history.upsert(merge([ev(tid, "queued", now - 1, capability="analysis", task_type="t1")]).values())
    row = history.get(tid)
    assert row is not None
    assert (row["status"], row["worker"], row["capability"], row["result"]) == (
        "success",
        "w1",
        "analysis",
        {"ok": 1},
    )
    assert row["runtime"] == pytest.approx(1.0, abs=0.01)
    assert row["created_at"].timestamp() == pytest.approx(now - 1, abs=0.01)


def test_same_batch_written_twice_changes_nothing(postgres_server) -> None:
    tid, now = f"h-{uuid.uuid4()}", time.time()
    rows = merge([ev(tid, "queued", now), ev(tid, "failed", now + 2, error="RuntimeError: x")]).values()
    history.upsert(rows)
    first = history.get(tid)
    history.upsert(rows)
    assert history.get(tid) == first
    with get_engine().connect() as connection:
        count = connection.execute(text("SELECT count(*) FROM task_results WHERE task_id = :t"), {"t": tid})
        assert count.scalar() == 1


def test_seed_runbook_queries_run_verbatim(postgres_server) -> None:
    now, tag = time.time(), uuid.uuid4().hex[:8]
    events = [ev(f"q-{tag}-{i}", status, now, task_type=f"type-{tag}") for i, status in
              enumerate(["success", "success", "failed", "processing"])]  # fmt: skip
    events.append(ev(f"q-{tag}-old", "processing", now, started_at=now - 3600, task_type=f"type-{tag}"))
    history.upsert(merge(events).values())
    with get_engine().connect() as c:
        by_status: dict[str, int] = dict(c.execute(text(SEED_STATUS_QUERY)).all())
        by_type: dict[str, int] = dict(c.execute(text(
            "SELECT task_type, COUNT(*) FROM task_results \n"
            "          WHERE created_at > NOW() - INTERVAL '1 hour' \n"
            "          GROUP BY task_type ORDER BY count DESC;"
        )).all())  # fmt: skip
        stuck = [r[0] for r in c.execute(text(
            "SELECT task_id, started_at FROM task_results \n"
            "          WHERE status='processing' AND started_at < NOW() - INTERVAL '30 minutes';"
        ))]  # fmt: skip
    assert by_status["success"] >= 2 and by_status["failed"] >= 1 and by_status["processing"] >= 2
    assert by_type[f"type-{tag}"] == 5
    assert f"q-{tag}-old" in stuck and f"q-{tag}-3" not in stuck
    assert history.status_counts(timedelta(hours=1))["success"] == by_status["success"]


def test_raw_helpers_bind_seed_style_and_named_parameters(postgres_server) -> None:
    tid = f"r-{uuid.uuid4()}"
    assert raw.execute("INSERT INTO task_results (task_id, status) VALUES ($1, $2)", (tid, "queued")) == 1
    assert raw.fetch("SELECT status FROM task_results WHERE task_id = :t", ({"t": tid},)) == [
        {"status": "queued"}
    ]
    hostile = "x'; DROP TABLE task_results; --"
    assert raw.fetch("SELECT task_id FROM task_results WHERE task_id = $1", (hostile,)) == []
    with pytest.raises(ValueError, match=r"placeholders \[1, 2\] but 1 argument"):
        raw.fetch("SELECT $1, $2", ("a",))


def test_claims_tell_a_redelivery_from_a_second_publish(postgres_server) -> None:
    from db.claims import claim

    tid = f"c-{uuid.uuid4()}"
    assert claim(tid, "publish-1") is True
    assert claim(tid, "publish-1") is True  # the same message redelivered may run again
    assert claim(tid, "publish-2") is False  # a second publish of the same task may not
    # After BRIDGE_DEDUP_TTL_SECONDS the same event id is a new event, as for the bridge's marker.
    raw.execute("UPDATE task_claims SET claimed_at = NOW() - INTERVAL '2 days' WHERE task_id = $1", (tid,))
    assert claim(tid, "publish-3") is True
    assert claim(tid, "publish-1") is False


def test_a_batch_postgresql_refuses_is_written_but_its_unstorable_record(postgres_server) -> None:
    now, tag = time.time(), uuid.uuid4().hex[:8]
    good = [ev(f"ok-{tag}-{n}", "success", now, payload={"n": n}) for n in range(5)]
    fixable = [
        ev(f"nul-{tag}", "failed", now, error="bad\x00byte", payload={"k\x00": "v\x00"}),
        ev(f"nan-{tag}", "success", now, payload={"x": float("nan"), "y": [float("inf")]}),
        ev(f"sur-{tag}", "success", now, payload={"s": "\udc00"}, error="\udc00"),
        ev(f"cap-{tag}", "rejected", now, capability="c" * 100, task_type="t" * 100),
    ]
    unstorable = ev("x" * 300, "success", now)  # the key itself: cutting it would merge two tasks
    before = history.refused_records

    # One call, one batch: nothing raises, so the writer never retries it
    history.upsert([*merge([*good, *fixable, unstorable]).values(), {"status": "queued", "task_id": None}])

    for event in good:
        assert history.get(str(event["task_id"]))["status"] == "success"  # type: ignore[index]
    rows = {name: history.get(f"{name}-{tag}") for name in ("nul", "nan", "sur", "cap")}
    assert rows["nul"]["error"] == "badbyte" and rows["nul"]["payload"] == {"k": "v"}  # type: ignore[index]
    assert rows["nan"]["payload"] == {"x": "nan", "y": ["inf"]}  # type: ignore[index]
    assert rows["sur"]["payload"] == {"s": "?"} and rows["sur"]["error"] == "?"  # type: ignore[index]
    assert rows["cap"]["capability"] == "c" * 64 and rows["cap"]["task_type"] == "t" * 64  # type: ignore[index]
    assert history.get("x" * 300) is None
    assert history.refused_records == before + 2  # the long id and the null one, each logged
