"""Heartbeat registry on a real Redis."""

from __future__ import annotations

import time

import pytest

from agents.registry import EngineCard, Registry

pytestmark = pytest.mark.servers


def card(engine: str, capabilities: list[str]) -> EngineCard:
    return EngineCard(engine=engine, capabilities=capabilities, queue_size=10, concurrency=2)


def test_heartbeat_expires_after_ttl(redis_client) -> None:
    registry = Registry(redis_client)
    registry.announce("reg-a@host", [card("reg_a", ["cap_a"])], ttl_seconds=0.5)
    assert registry.live_workers()["reg_a"] == ["reg-a@host"]
    time.sleep(0.7)
    assert "reg_a" not in registry.live_workers()
    # The card stays, so the capability is known but has no live worker.
    [gone] = registry.candidates("cap_a")
    assert gone.live_workers == 0
    assert registry.prune() >= 1


def test_candidates_carry_depth_from_every_priority_list(redis_client) -> None:
    registry = Registry(redis_client)
    registry.announce("reg-b@host", [card("reg_b", ["cap_b"])], ttl_seconds=30)
    redis_client.lpush("reg_b", "m1")
    redis_client.lpush("reg_b\x06\x163", "m2", "m3")
    try:
        [found] = registry.candidates("cap_b")
        assert (found.depth, found.live_workers, found.queue_size) == (3, 1, 10)
    finally:
        redis_client.delete("reg_b", "reg_b\x06\x163")
        registry.withdraw("reg-b@host", ["reg_b"])


def test_withdraw_removes_at_once(redis_client) -> None:
    registry = Registry(redis_client)
    registry.announce("reg-c@host", [card("reg_c", ["cap_c"])], ttl_seconds=30)
    registry.withdraw("reg-c@host", ["reg_c"])
    assert "reg_c" not in registry.live_workers()


def test_cards_carry_the_payload_schemas_and_old_cards_still_parse() -> None:
    from agents.engines.performance import MetricsPayload, PerformanceEngine
    from agents.registry import engine_card

    announced = engine_card(PerformanceEngine(), 2)
    assert announced.schemas == {"default": MetricsPayload.model_json_schema()}
    assert EngineCard.model_validate_json(announced.model_dump_json()) == announced
    # A card from a worker older than payload schemas: it declares none.
    old = '{"engine": "old", "capabilities": ["c"], "queue_size": 5, "concurrency": 1}'
    assert EngineCard.model_validate_json(old).schemas == {}
