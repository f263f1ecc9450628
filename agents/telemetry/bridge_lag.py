"""The bridge's consumer lag, handed to the monitor through Redis.

The bridge serves `agents_bridge_lag` on its own /metrics port, where Prometheus reads it; the
monitor runs in a Celery worker and cannot scrape it. So each bridge also writes its lag here
(BRIDGE_LAG_KEY: one hash field per bridge process) each time it reads it from JetStream, stamped
with Redis's clock, and removes its field when it stops cleanly.

No TTL on purpose: a bridge that died leaves its last report, which then ages, so the monitor can
tell "the bridge reports no lag" from "nobody has reported the lag for a while" (the staleness
rule is in agents/monitoring/snapshot.py). Reports older than FORGET_AFTER_SECONDS are deleted by
the next bridge that writes, so crashed pods do not pile up.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass

import redis

from agents.names import BRIDGE_LAG_KEY
from agents.registry import text

FORGET_AFTER_SECONDS = 24 * 3600.0

_REPORT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local at = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
redis.call('HSET', KEYS[1], ARGV[1], '{"lag":' .. ARGV[2] .. ',"paused":' .. ARGV[3] .. ',"at":' .. at .. '}')
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local ok, report = pcall(cjson.decode, all[i + 1])
  if not ok or type(report) ~= 'table' or tonumber(report.at) == nil
      or now - tonumber(report.at) > tonumber(ARGV[4]) then
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return 1
"""


@dataclass(frozen=True, slots=True)
class LagReport:
    """The freshest bridge report: events not yet delivered, paused or not, when (Redis clock)."""

    lag: int
    paused: bool
    at: float


def bridge_id() -> str:
    """This bridge process's field in the hash: host (the pod's name in k8s) and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def report(client: redis.Redis, bridge: str, lag: int, paused: bool) -> None:
    """Write this bridge's current lag, stamped with Redis's time (one round trip)."""
    flag = "true" if paused else "false"  # spliced into the JSON as a literal
    client.eval(_REPORT, 1, BRIDGE_LAG_KEY, bridge, int(lag), flag, FORGET_AFTER_SECONDS)


def withdraw(client: redis.Redis, bridge: str) -> None:
    """Remove this bridge's report (clean stop: a bridge scaled away is not a silent one)."""
    client.hdel(BRIDGE_LAG_KEY, bridge)


def freshest(raw: dict[bytes | str, bytes | str]) -> LagReport | None:
    """The newest of the reports read from the hash (all bridges read the same durable consumer,
    so the newest is the best figure); None when there is none."""
    reports = []
    for value in raw.values():
        try:
            data = json.loads(text(value))
            reports.append(LagReport(int(data["lag"]), bool(data["paused"]), float(data["at"])))
        except (ValueError, TypeError, KeyError):
            continue  # a damaged field counts as no report
    return max(reports, key=lambda r: r.at, default=None)
