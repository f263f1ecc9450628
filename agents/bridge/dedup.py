"""Redis markers that keep a redelivered event from becoming a second task.

Two phases, so a crash never loses an event: claim ("pending", short TTL) before publishing,
confirm ("published", BRIDGE_DEDUP_TTL_SECONDS) after. A crash between the two leaves a
pending claim that expires, and the redelivery publishes then.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import redis

from agents.names import bridge_marker_key

PENDING = b"pending"
PUBLISHED = b"published"


class Claim(StrEnum):
    """Result of claiming one task id."""

    CLAIMED = "claimed"  # ours to publish
    PUBLISHED = "published"  # an earlier delivery already published it
    BUSY = "busy"  # another delivery is publishing it right now


class Markers:
    """Claims, confirms and releases markers, one Redis round trip per batch each."""

    def __init__(self, client: redis.Redis, pending_ttl: float, published_ttl: int) -> None:
        self._client = client
        self._pending_ms = max(1000, int(pending_ttl * 1000))
        self._published_ttl = published_ttl

    def claim(self, task_ids: Sequence[str]) -> list[Claim]:
        """SET NX a pending marker per id; ids already marked report what holds them."""
        pipe = self._client.pipeline(transaction=False)
        for task_id in task_ids:
            key = bridge_marker_key(task_id)
            pipe.set(key, PENDING, nx=True, px=self._pending_ms)
            pipe.get(key)
        replies = pipe.execute()
        claims = []
        for created, value in zip(replies[::2], replies[1::2], strict=True):
            if created:
                claims.append(Claim.CLAIMED)
            else:
                claims.append(Claim.PUBLISHED if value == PUBLISHED else Claim.BUSY)
        return claims

    def confirm(self, task_ids: Sequence[str]) -> None:
        """The tasks are in the broker: keep their markers for the dedup TTL."""
        pipe = self._client.pipeline(transaction=False)
        for task_id in task_ids:
            pipe.set(bridge_marker_key(task_id), PUBLISHED, ex=self._published_ttl)
        pipe.execute()

    def release(self, task_ids: Sequence[str]) -> None:
        """The publish failed: drop the claims so the redelivery may publish."""
        if task_ids:
            self._client.delete(*(bridge_marker_key(t) for t in task_ids))
