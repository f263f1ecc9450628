"""Passwords never reach the terminal."""

from __future__ import annotations

from agents.urls import masked


def test_password_is_masked_and_the_rest_kept() -> None:
    assert masked("postgresql://agents:s3cret@db:5432/agents") == "postgresql://agents:***@db:5432/agents"
    assert masked("redis://:s3cret@redis:6379/0") == "redis://:***@redis:6379/0"
    assert masked("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222"


def test_every_part_of_a_sentinel_list_is_masked() -> None:
    url = "sentinel://:s3cret@h1:26379/0;sentinel://:s3cret@h2:26379/0;sentinel://h3:26379/0"
    assert masked(url) == "sentinel://:***@h1:26379/0;sentinel://:***@h2:26379/0;sentinel://h3:26379/0"
