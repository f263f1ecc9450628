"""Process-wide clients for the platform's servers, created lazily from the settings."""

from __future__ import annotations

from functools import lru_cache

import redis

from agents.breaker import Breakers
from agents.redis_clients import new_redis
from agents.registry import Registry
from agents.settings import get_settings


@lru_cache(maxsize=1)
def redis_client() -> redis.Redis:
    """One pooled Redis client per process (redis-py resets the pool after a fork)."""
    settings = get_settings()
    return new_redis(settings, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30)


@lru_cache(maxsize=1)
def registry() -> Registry:
    """The live-engine registry on the platform's Redis."""
    return Registry(redis_client())


@lru_cache(maxsize=1)
def breakers() -> Breakers:
    """The shared circuit breakers on the platform's Redis."""
    return Breakers(redis_client(), get_settings())
