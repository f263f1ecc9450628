"""Folding lifecycle events into one row: pure rules, no servers."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from agents.lifecycle import digest, fold, merge


def event(status: str, at: float, **fields: object) -> dict[str, object]:
    return {"task_id": "t", "status": status, "at": at, **fields}


def test_late_queued_event_does_not_undo_success() -> None:
    row = merge([event("success", 3.0, result={"x": 1}), event("queued", 1.0, capability="analysis")])["t"]
    assert row["status"] == "success"
    assert row["capability"] == "analysis"
    assert row["created_at"] == 1.0


def test_every_order_of_a_lifecycle_ends_in_the_same_row() -> None:
    events = [
        event("queued", 1.0, capability="analysis", payload={"a": 1}),
        event("processing", 2.0, worker="w1", started_at=2.0),
        event("retrying", 3.0, retries=1, error="retry: boom"),
        event("processing", 4.0, worker="w2", started_at=4.0, retries=1),
        event("success", 5.0, result={"ok": True}, finished_at=5.0),
    ]
    rows = [merge(order)["t"] for order in itertools.permutations(events)]
    assert all(r == rows[0] for r in rows)
    assert rows[0]["status"] == "success"
    assert rows[0]["retries"] == 1
    assert rows[0]["worker"] == "w2"


def test_outcome_beats_stage_and_newer_outcome_wins() -> None:
    failed = fold(None, event("failed", 2.0, error="stuck"))
    assert fold(failed, event("processing", 3.0))["status"] == "failed"
    assert fold(failed, event("success", 3.0))["status"] == "success"
    assert fold(failed, event("success", 1.0))["status"] == "failed"
    processing = fold(None, event("processing", 5.0))
    assert fold(processing, event("success", 4.0))["status"] == "success"


def test_digest_ignores_key_order() -> None:
    assert digest({"a": 1, "b": [1, 2]}) == digest({"b": [1, 2], "a": 1})
    assert digest({"a": 1}) != digest({"a": 2})


statuses = st.sampled_from(["queued", "processing", "retrying", "success", "failed", "rejected", "revoked"])


@given(st.lists(st.tuples(statuses, st.floats(0, 1000)), min_size=1, max_size=12, unique_by=lambda p: p[1]))
def test_merge_and_fold_agree_in_any_arrival_order(pairs: list[tuple[str, float]]) -> None:
    events = [event(status, at) for status, at in pairs]
    # A row folded event by event in arrival order (separate batches) ends where one batch does.
    row = None
    for item in events:
        row = fold(row, item)
    assert row is not None
    assert row["status"] == merge(events)["t"]["status"] == merge(reversed(events))["t"]["status"]
