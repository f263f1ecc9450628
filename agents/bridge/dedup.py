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


# One script call per batch: 2N pipelined commands cost more to pack and parse than the publish.
_CLAIM = """
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, 'pending', 'NX', 'PX', ARGV[1]) then
    out[i] = 'claimed'
  else
    out[i] = redis.call('GET', key) or 'pending'
  end
end
return out
"""
_CONFIRM = """
for _, key in ipairs(KEYS) do
  redis.call('SET', key, 'published', 'EX', ARGV[1])
end
return #KEYS
"""


class Markers:
    """Claims, confirms and releases markers, one Redis call per batch each."""

    def __init__(self, client: redis.Redis, pending_ttl: float, published_ttl: int) -> None:
        self._client = client
        self._claim = client.register_script(_CLAIM)
        self._confirm = client.register_script(_CONFIRM)
        self._pending_ms = max(1000, int(pending_ttl * 1000))
        self._published_ttl = published_ttl

    def claim(self, task_ids: Sequence[str]) -> list[Claim]:
        """SET NX a pending marker per id; ids already marked report what holds them."""
        if not task_ids:
            return []
        replies = self._claim(keys=[bridge_marker_key(t) for t in task_ids], args=[self._pending_ms])
        claims = []
        for value in replies:
            if value == b"claimed":
                claims.append(Claim.CLAIMED)
            else:
                claims.append(Claim.PUBLISHED if value == PUBLISHED else Claim.BUSY)
        return claims

    def confirm(self, task_ids: Sequence[str]) -> None:
        """The tasks are in the broker: keep their markers for the dedup TTL."""
        if task_ids:
            self._confirm(keys=[bridge_marker_key(t) for t in task_ids], args=[self._published_ttl])

    def release(self, task_ids: Sequence[str]) -> None:
        """The publish failed: drop the claims so the redelivery may publish."""
        if task_ids:
            self._client.delete(*(bridge_marker_key(t) for t in task_ids))
