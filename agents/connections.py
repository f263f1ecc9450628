"""Process-wide clients for the platform's servers, created lazily from the settings."""

from __future__ import annotations

from functools import lru_cache

import redis

from agents import redis_tls
from agents.breaker import Breakers
from agents.registry import Registry
from agents.settings import get_settings


@lru_cache(maxsize=1)
def redis_client() -> redis.Redis:
    """One pooled Redis client per process (redis-py resets the pool after a fork)."""
    settings = get_settings()
    return redis.Redis.from_url(
        redis_tls.client_url(settings.redis_url),
        socket_timeout=10,
        socket_connect_timeout=5,
        health_check_interval=30,
        **redis_tls.ssl_options(settings),
    )


@lru_cache(maxsize=1)
def registry() -> Registry:
    """The live-engine registry on the platform's Redis."""
    return Registry(redis_client())


@lru_cache(maxsize=1)
def breakers() -> Breakers:
    """The shared circuit breakers on the platform's Redis."""
    return Breakers(redis_client(), get_settings())
