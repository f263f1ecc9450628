"""The transport tests' own Redis database, emptied before and after each test: the module's
`URL` names it (the session's workers keep their unacked entries in database 0)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis


@pytest.fixture
def raw(request: pytest.FixtureRequest, redis_server: Any) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(request.module.URL)
    client.flushdb()
    yield client
    client.flushdb()
