"""Per-engine circuit breakers and recent-outcome statistics, shared by all processes in Redis.

One Lua script records an outcome atomically, so every worker on every host sees one breaker:
consecutive failures open it for `reset_timeout`; after that it is half-open, the next success
closes it and the next failure opens it again. Redis's clock is the only clock used.

The moving averages are forgotten with a half-life while no outcome arrives: an engine that lost
its traffic is not judged forever by its worst minute, so routing tries it again (agents/routing).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import redis

from agents.names import breaker_key, stats_key
from agents.routing.decision import BreakerState
from agents.settings import Settings

# Weight of the newest outcome in the moving averages of success and latency.
EWMA_ALPHA = 0.2
# Statistics of an engine that stopped working fade out instead of steering routing forever.
STATS_TTL_SECONDS = 3600
# Without new outcomes, what the averages learnt halves this often (back towards a new engine's).
STATS_HALF_LIFE_SECONDS = 60.0


class Transition(IntEnum):
    """What one recorded outcome did to the breaker (the Lua script's reply)."""

    STAYED_CLOSED = 0
    STAYED_OPEN = 1
    OPENED = 2
    CLOSED = 3

    @property
    def is_open(self) -> bool:
        """The breaker is open after this outcome."""
        return self in (Transition.STAYED_OPEN, Transition.OPENED)


_RECORD_OUTCOME = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local ok = tonumber(ARGV[1])
local latency = tonumber(ARGV[2])
local threshold = tonumber(ARGV[3])
local reset = tonumber(ARGV[4])
local alpha = tonumber(ARGV[5])
local half_life = tonumber(ARGV[7])

local s = redis.call('HMGET', KEYS[2], 'success', 'latency_ms', 'at')
local keep = 1
if s[3] then keep = 0.5 ^ (math.max(now - tonumber(s[3]), 0) / half_life) end
local success = ok
local lat = latency
if s[1] then success = (1 - (1 - tonumber(s[1])) * keep) * (1 - alpha) + ok * alpha end
if s[2] then lat = tonumber(s[2]) * keep * (1 - alpha) + latency * alpha end
redis.call('HSET', KEYS[2], 'success', success, 'latency_ms', lat, 'at', now)
redis.call('HINCRBY', KEYS[2], ok == 1 and 'succeeded' or 'failed', 1)
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[6]))

local b = redis.call('HMGET', KEYS[1], 'failures', 'open_until')
local failures = tonumber(b[1]) or 0
local open_until = tonumber(b[2])
if ok == 1 then
  if open_until == nil then
    if failures > 0 then redis.call('DEL', KEYS[1]) end
    return 0
  end
  if now >= open_until then
    redis.call('DEL', KEYS[1])
    return 3
  end
  return 1
end
if open_until ~= nil then
  if now >= open_until then
    redis.call('HSET', KEYS[1], 'failures', threshold, 'open_until', now + reset)
    return 2
  end
  return 1
end
failures = failures + 1
if failures >= threshold then
  redis.call('HSET', KEYS[1], 'failures', failures, 'open_until', now + reset)
  return 2
end
redis.call('HSET', KEYS[1], 'failures', failures)
return 0
"""


def breaker_state(open_until: float | None, now: float) -> BreakerState:
    """State of a breaker given when it stops being open (None: never opened)."""
    if open_until is None:
        return BreakerState.CLOSED
    return BreakerState.OPEN if now < open_until else BreakerState.HALF_OPEN


@dataclass(frozen=True, slots=True)
class EngineHealth:
    """What Redis knows of one engine's recent behaviour."""

    breaker: BreakerState
    consecutive_failures: int
    success_rate: float
    latency_ms: float | None


class Breakers:
    """Records task outcomes and reads breaker state for engines, through one Redis client."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self._client = client
        self._settings = settings
        self._record = client.register_script(_RECORD_OUTCOME)

    def record(self, engine: str, ok: bool, latency_ms: float) -> bool:
        """Record one finished task; returns True when the engine's breaker is open afterwards."""
        reply = self._record(keys=[breaker_key(engine), stats_key(engine)], args=self._args(ok, latency_ms))
        return Transition(int(reply)).is_open

    def record_many(self, engine: str, samples: list[tuple[bool, float]]) -> list[Transition]:
        """Record a batch's outcomes in one round trip; what each did to the breaker, in order."""
        if not samples:
            return []
        pipe = self._client.pipeline(transaction=False)
        for ok, latency_ms in samples:
            self._record(
                keys=[breaker_key(engine), stats_key(engine)], args=self._args(ok, latency_ms), client=pipe
            )
        return [Transition(int(reply)) for reply in pipe.execute()]

    def _args(self, ok: bool, latency_ms: float) -> list[float]:
        return [
            1 if ok else 0,
            round(latency_ms, 3),
            self._settings.breaker_failure_threshold,
            self._settings.breaker_reset_timeout_seconds,
            EWMA_ALPHA,
            STATS_TTL_SECONDS,
            STATS_HALF_LIFE_SECONDS,
        ]

    def health(self, engine: str) -> EngineHealth:
        """Breaker state and recent outcome averages of one engine."""
        pipe = self._client.pipeline(transaction=False)
        pipe.time()
        pipe.hmget(breaker_key(engine), "failures", "open_until")
        pipe.hmget(stats_key(engine), *STATS_FIELDS)
        (seconds, micros), breaker, stats = pipe.execute()
        return health_from_raw(seconds + micros / 1e6, breaker, stats)

    def reset(self, engine: str) -> None:
        """Close an engine's breaker by hand (operator action)."""
        self._client.delete(breaker_key(engine))


def forgotten(success: float, latency_ms: float | None, age_seconds: float) -> tuple[float, float | None]:
    """The averages `age_seconds` after their last outcome: the gap to a perfect record (success 1,
    latency 0) shrinks by half every STATS_HALF_LIFE_SECONDS."""
    keep = 0.5 ** (max(age_seconds, 0.0) / STATS_HALF_LIFE_SECONDS)
    return 1.0 - (1.0 - success) * keep, None if latency_ms is None else latency_ms * keep


# The stats hash's fields, in the order health_from_raw reads them.
STATS_FIELDS = ("success", "latency_ms", "at")


def health_from_raw(now: float, breaker: list[bytes | None], stats: list[bytes | None]) -> EngineHealth:
    """Turn the raw HMGET replies of a breaker and a stats hash (STATS_FIELDS) into an EngineHealth."""
    failures_raw, open_raw = breaker
    success_raw, latency_raw, at_raw = (*stats, None, None)[:3]
    success = float(success_raw) if success_raw else 1.0
    latency = float(latency_raw) if latency_raw else None
    if at_raw:  # older workers wrote no time: their averages are taken as they are
        success, latency = forgotten(success, latency, now - float(at_raw))
    return EngineHealth(
        breaker=breaker_state(float(open_raw) if open_raw else None, now),
        consecutive_failures=int(failures_raw or 0),
        success_rate=success,
        latency_ms=latency,
    )
