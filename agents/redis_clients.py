"""The one way a process of the platform opens a redis-py client: straight to REDIS_URL's server
(TLS options from agents/redis_tls.py), or, for a `sentinel://` REDIS_URL, to whichever server the
Sentinels name master now (agents/redis_sentinel.py), so a failover is followed on reconnect."""

from __future__ import annotations

from typing import Any

import redis
from redis.sentinel import Sentinel

from agents import redis_sentinel, redis_tls
from agents.settings import Settings


def new_redis(settings: Settings, **options: Any) -> redis.Redis:
    """A pooled client to the platform's Redis master; `options` are redis-py connection options
    (timeouts, health checks), used for the Sentinels too."""
    if not redis_sentinel.is_sentinel(settings.redis_url):
        url = redis_tls.client_url(settings.redis_url)
        return redis.Redis.from_url(url, **options, **redis_tls.ssl_options(settings))
    target = redis_sentinel.parse(settings.redis_url)
    sentinels = Sentinel(
        list(target.sentinels),
        sentinel_kwargs=sentinel_options(settings) | _timeouts(options),
    )
    return sentinels.master_for(
        settings.redis_sentinel_master,
        redis_class=redis.Redis,
        db=target.db,
        username=target.username,
        password=target.password,
        **options,
    )


def sentinel_options(settings: Settings) -> dict[str, Any]:
    """How to talk to the Sentinels themselves (kombu's and Celery's `sentinel_kwargs` too)."""
    return {"password": settings.redis_sentinel_password} if settings.redis_sentinel_password else {}


def _timeouts(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k in ("socket_timeout", "socket_connect_timeout")}
