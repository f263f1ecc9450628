"""The rollback switch: TRAFFIC_ROUTE, overridable live through a Redis key.

`agents traffic old_system` sets the key; the bridge re-reads it every
BRIDGE_ROUTE_POLL_SECONDS, so a rollback needs no restart. Without the key, the setting rules.
"""

from __future__ import annotations

from typing import Literal

import redis

from agents.names import TRAFFIC_ROUTE_KEY
from agents.registry import text

TrafficRoute = Literal["new_system", "old_system"]
ROUTES: tuple[TrafficRoute, ...] = ("new_system", "old_system")


def current_route(client: redis.Redis, default: TrafficRoute) -> TrafficRoute:
    """The route in Redis if set and valid, else `default` (the TRAFFIC_ROUTE setting)."""
    raw = client.get(TRAFFIC_ROUTE_KEY)
    value = text(raw) if raw is not None else ""
    for route in ROUTES:
        if value == route:
            return route
    return default


def set_route(client: redis.Redis, route: TrafficRoute | None) -> None:
    """Switch the live route; None removes the override (back to the setting)."""
    if route is None:
        client.delete(TRAFFIC_ROUTE_KEY)
    else:
        if route not in ROUTES:
            raise ValueError(f"traffic route must be one of {', '.join(ROUTES)}, not {route!r}")
        client.set(TRAFFIC_ROUTE_KEY, route)
