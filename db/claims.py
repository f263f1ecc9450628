"""Worker-side guard for bridged tasks: one task id, one effect (INSERT ... ON CONFLICT).

The bridge derives a task id from the NATS event, so a crash between its Celery publish and its
dedup marker can publish the same task twice. Each publish carries its own publish id; the
first message to start claims the task id, its own redeliveries (same publish id) may run again,
and any other message for that id is skipped.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, case, func
from sqlalchemy.dialects.postgresql import insert

from agents.settings import get_settings
from db.models import TaskClaim
from db.session import get_engine


@lru_cache(maxsize=1)
def _claim_statement() -> Any:
    statement = insert(TaskClaim)
    # A claim lives as long as the bridge's Redis marker: after that the same event id is a new
    # event (the bridge would publish it again too). Otherwise the update changes nothing, so
    # RETURNING yields the owner's publish id.
    ttl = func.make_interval(0, 0, 0, 0, 0, 0, bindparam("ttl"))
    expired = TaskClaim.claimed_at < func.now() - ttl
    return statement.on_conflict_do_update(
        index_elements=[TaskClaim.task_id],
        set_={
            "publish_id": case((expired, statement.excluded.publish_id), else_=TaskClaim.publish_id),
            "claimed_at": case((expired, func.now()), else_=TaskClaim.claimed_at),
        },
    ).returning(TaskClaim.publish_id)


def claim(task_id: str, publish_id: str) -> bool:
    """True when this message owns the task id (first claim, or a redelivery of the owner)."""
    params = {"task_id": task_id, "publish_id": publish_id, "ttl": get_settings().bridge_dedup_ttl_seconds}
    with get_engine().begin() as connection:
        owner = connection.execute(_claim_statement(), params).scalar_one()
    return bool(owner == publish_id)
