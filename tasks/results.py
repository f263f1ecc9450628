"""Stores many task results in one Redis round trip, in the format Celery's Redis backend uses.

`backend.store_result` costs a GET and a SET+PUBLISH pipeline per task; a batch task writes all
of its results (and router rejections) with one pipeline, so `AsyncResult.get()` and Flower's
result view read them as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery import Celery


def store_results(app: Celery, outcomes: Sequence[tuple[str, str, Any]]) -> None:
    """Store (task id, state, result or exception) for each outcome and notify waiting callers."""
    if not outcomes:
        return
    backend = app.backend
    pipe = backend.client.pipeline(transaction=False)
    for task_id, state, value in outcomes:
        # The same two steps as the backend's own store_result: exceptions become JSON-safe dicts.
        encoded_value = backend.encode_result(value, state)
        meta = backend._get_result_meta(result=encoded_value, state=state, traceback=None, request=None)
        meta["task_id"] = task_id
        encoded = backend.encode(meta)
        key = backend.get_key_for_task(task_id)
        if backend.expires:
            pipe.setex(key, backend.expires, encoded)
        else:
            pipe.set(key, encoded)
        pipe.publish(key, encoded)  # wakes callers blocked in AsyncResult.get()
    pipe.execute()
