"""Live engine discovery: workers announce their engines with heartbeats in Redis.

A sorted set maps "engine|host" to the Redis time at which that heartbeat expires, so reading
the live workers is one ZRANGEBYSCORE and a dead worker drops out without anyone cleaning up.
Engine cards (capabilities, queue_size) stay in a hash so routing can tell an unknown
capability from a known one whose workers are all gone.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

import redis
from pydantic import BaseModel, model_validator

from agents.base import BaseAgent
from agents.breaker import STATS_FIELDS, health_from_raw
from agents.limits import hard_limit, soft_limit
from agents.names import (
    ENGINE_INFO_KEY,
    LIVE_WORKERS_KEY,
    WORKER_ACTIVE_KEY,
    breaker_key,
    engine_task_name,
    queue_keys,
    stats_key,
)
from agents.routing.decision import Candidate
from agents.validation.payloads import json_schemas

_ANNOUNCE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local ttl = tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[i])
  redis.call('HSET', KEYS[2], string.match(ARGV[i], '^[^|]+'), ARGV[i + 1])
end
return #ARGV
"""


class EngineCard(BaseModel):
    """What a worker tells the fleet about an engine it serves: enough for any router, bridge or
    reaper to reach it by name, without its code (cards of older workers lack the last fields)."""

    engine: str
    capabilities: list[str]
    queue_size: int
    concurrency: int
    queue: str = ""  # default: the engine's name
    task: str = ""  # default: agents.engine.<engine>
    time_limit: int | None = None  # hard limit of one execution (a batch, for batch engines), seconds
    soft_time_limit: int | None = None
    batch_size: int = 1
    max_retries: int = 0
    idempotent: bool = False
    # task_type -> JSON Schema of its payload (BaseAgent.payload_schemas), so any process can
    # validate a payload without the engine's code (the analysis engine's `validation`).
    schemas: dict[str, dict[str, Any]] = {}

    @model_validator(mode="after")
    def _reachable_by_name(self) -> EngineCard:
        self.queue = self.queue or self.engine
        self.task = self.task or engine_task_name(self.engine)
        return self


def engine_card(engine: BaseAgent, concurrency: int) -> EngineCard:
    """The card a worker announces for an engine of its catalog."""
    config = engine.config
    assert config is not None  # nosec B101 # narrows the type for mypy, not a check
    hard = hard_limit(config.task_timeout_seconds)
    return EngineCard(
        engine=engine.name,
        capabilities=engine.capabilities,
        queue_size=config.queue_size,
        concurrency=concurrency,
        queue=engine.name,
        task=engine_task_name(engine.name),
        time_limit=hard,
        soft_time_limit=soft_limit(hard),
        batch_size=config.batch_size,
        max_retries=config.max_retries,
        idempotent=config.idempotent,
        schemas=json_schemas(engine.payload_schemas),
    )


def text(raw: bytes | str) -> str:
    """A Redis reply as text (clients may or may not decode responses)."""
    return raw.decode() if isinstance(raw, bytes) else raw


def member(engine: str, host: str) -> str:
    """Sorted-set member naming one worker of one engine."""
    return f"{engine}|{host}"


class Registry:
    """Reads and writes engine heartbeats and builds routing candidates from them."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._announce = client.register_script(_ANNOUNCE)

    def announce(self, host: str, cards: Iterable[EngineCard], ttl_seconds: float) -> None:
        """Heartbeat: this host serves these engines for the next `ttl_seconds`."""
        args: list[str | float] = [ttl_seconds]
        for card in cards:
            args += [member(card.engine, host), card.model_dump_json()]
        if len(args) > 1:
            self._announce(keys=[LIVE_WORKERS_KEY, ENGINE_INFO_KEY], args=args)

    def withdraw(self, host: str, engines: Iterable[str]) -> None:
        """Remove this host's heartbeats at once (clean shutdown)."""
        members = [member(engine, host) for engine in engines]
        if members:
            self._client.zrem(LIVE_WORKERS_KEY, *members)
        self._client.hdel(WORKER_ACTIVE_KEY, host)

    def report_active(
        self,
        host: str,
        running: int,
        queues: Iterable[str],
        engines: Iterable[str] = (),
        cpu_percent: float | None = None,
        memory_bytes: int | None = None,
    ) -> None:
        """How many requests this host runs now, the queues it consumes, the engines it serves and
        its process tree's CPU and memory (agents/telemetry/sources.py reads it)."""
        report: dict[str, object] = {"active": running, "queues": sorted(queues), "engines": sorted(engines)}
        if cpu_percent is not None and memory_bytes is not None:
            report |= {"cpu_percent": round(cpu_percent, 1), "memory_bytes": memory_bytes}
        self._client.hset(WORKER_ACTIVE_KEY, host, json.dumps(report))

    def prune(self) -> int:
        """Delete expired heartbeats; returns how many went."""
        seconds, micros = self._client.time()
        return int(self._client.zremrangebyscore(LIVE_WORKERS_KEY, "-inf", seconds + micros / 1e6))

    def cards(self) -> dict[str, EngineCard]:
        """Every engine ever announced, live or not."""
        raw = self._client.hgetall(ENGINE_INFO_KEY)
        return {text(k): EngineCard.model_validate_json(v) for k, v in raw.items()}

    def live_workers(self) -> dict[str, list[str]]:
        """Hosts with an unexpired heartbeat, per engine."""
        seconds, micros = self._client.time()
        members = self._client.zrangebyscore(LIVE_WORKERS_KEY, seconds + micros / 1e6, "+inf")
        workers: dict[str, list[str]] = {}
        for raw in members:
            engine, _, host = text(raw).partition("|")  # type: ignore[arg-type]
            workers.setdefault(engine, []).append(host)
        return workers

    def candidates(self, capability: str | None = None) -> list[Candidate]:
        """Every known engine (serving `capability`, if given) with its live figures.

        Two round trips: the cards and live workers, then depth, breaker and stats of the
        engines that matter.
        """
        pipe = self._client.pipeline(transaction=False)
        pipe.time()
        pipe.hgetall(ENGINE_INFO_KEY)
        pipe.zrange(LIVE_WORKERS_KEY, 0, -1, withscores=True)
        (seconds, micros), raw_cards, scored = pipe.execute()
        now = seconds + micros / 1e6
        cards = [EngineCard.model_validate(json.loads(v)) for v in raw_cards.values()]
        if capability is not None:
            cards = [c for c in cards if capability in c.capabilities]
        live = Counter(text(m).partition("|")[0] for m, expiry in scored if expiry > now)

        pipe = self._client.pipeline(transaction=False)
        for card in cards:
            for key in queue_keys(card.queue):
                pipe.llen(key)
            pipe.hmget(breaker_key(card.engine), "failures", "open_until")
            pipe.hmget(stats_key(card.engine), *STATS_FIELDS)
        replies = pipe.execute()
        per_card = len(queue_keys("x")) + 2
        candidates = []
        for index, card in enumerate(cards):
            chunk = replies[index * per_card : (index + 1) * per_card]
            health = health_from_raw(now, chunk[-2], chunk[-1])
            candidates.append(
                Candidate(
                    engine=card.engine,
                    capabilities=frozenset(card.capabilities),
                    queue_size=card.queue_size,
                    live_workers=live.get(card.engine, 0),
                    depth=sum(chunk[:-2]),
                    breaker=health.breaker,
                    success_rate=health.success_rate,
                    latency_ms=health.latency_ms,
                    queue=card.queue,
                    task=card.task,
                )
            )
        return candidates
