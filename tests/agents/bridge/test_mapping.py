"""Subject map: default pattern, configured subjects, engine subjects, stream subjects (no servers)."""

from __future__ import annotations

import asyncio

import pytest

from agents.bridge.mapping import Route, SubjectMap, covers, matches, minimal_subjects
from tests.engines import MyEngine, config


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        ("a.b", "a.b", True),
        ("a.*", "a.b", True),
        ("a.*", "a.b.c", False),
        ("a.>", "a.b.c", True),
        ("a.>", "a", False),
        ("a.b", "a.c", False),
        ("*.b", "a.b", True),
    ],
)
def test_matches_follows_nats_wildcards(pattern: str, subject: str, expected: bool) -> None:
    assert matches(pattern, subject) is expected


def test_covers_and_minimal_subjects() -> None:
    assert covers("events.>", "events.analysis.x")
    assert covers("events.>", "events.*")
    assert not covers("events.*", "events.>")
    assert not covers("events.*", "events.a.b")
    assert minimal_subjects(["events.>", "events.a.b", "my.topic", "my.*"]) == ["events.>", "my.*"]


def test_default_pattern_maps_capability_and_task_type() -> None:
    subjects = SubjectMap("events", [])
    assert subjects.match("events.analysis.report") == Route("analysis", "report")
    assert subjects.match("events.analysis") == Route("analysis", "default")
    assert subjects.match("events.a.b.c") is None
    assert subjects.match("other.analysis.x") is None
    assert subjects.stream_subjects() == ["events.>"]


def test_engine_subjects_pin_the_engine_and_use_its_first_capability() -> None:
    # Given the seed's engine, which subscribes to "my.topic" in _setup_subscriptions
    engine = MyEngine(config)
    asyncio.run(engine.start())
    subjects = SubjectMap.build("events", {}, [engine])
    # Then its subject maps to its first capability, pinned to it, and the stream captures it
    assert subjects.match("my.topic") == Route("processing", "my.topic", "my_engine")
    assert subjects.stream_subjects() == ["events.>", "my.topic"]


def test_configured_subjects_win_and_exact_beats_wildcard() -> None:
    subjects = SubjectMap.build(
        "events", {"orders.*": "processing:order", "orders.vip": "analysis", "events.x.y": "flaky"}, []
    )
    assert subjects.match("orders.new") == Route("processing", "order")
    assert subjects.match("orders.vip") == Route("analysis", "default")
    assert subjects.match("events.x.y") == Route("flaky", "default")
    assert subjects.stream_subjects() == ["events.>", "orders.*"]
