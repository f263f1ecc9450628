"""REDIS_URL in Celery's sentinel form: parsed into Sentinels, password and database, and refused
with the problem named when it cannot work."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agents.redis_sentinel import SentinelTarget, is_sentinel, parse
from agents.settings import Settings

URL = "sentinel://:p%40ss@s1.example:26380/2;sentinel://:p%40ss@s2.example/2; sentinel://:p%40ss@10.0.0.3:5000/2"


def test_every_sentinel_and_the_servers_password_and_database() -> None:
    assert is_sentinel(URL) and not is_sentinel("redis://s1.example:6379/0")
    assert parse(URL) == SentinelTarget(
        sentinels=(("s1.example", 26380), ("s2.example", 26379), ("10.0.0.3", 5000)),
        password="p@ss",
        username=None,
        db=2,
    )


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("sentinel://s1:26379/0;redis://s2:6379/0", "mixes redis:// into a sentinel:// list"),
        ("sentinel://:a@s1/0;sentinel://:b@s2/0", "differ in user, password or database"),
        ("sentinel://s1/0;sentinel://s2/1", "differ in user, password or database"),
        ("sentinel://s1/zero", "database must be a number, got 'zero'"),
        ("sentinel://:pw@:26379/0", "without a host"),
        ("sentinel://s1:99999/0", "bad port"),
    ],
)
def test_a_bad_sentinel_url_is_refused_by_name(url: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        Settings(_env_file=None, redis_url=url)


def test_a_sentinel_url_needs_the_master_sets_name() -> None:
    with pytest.raises(ValidationError, match="REDIS_SENTINEL_MASTER is empty"):
        Settings(_env_file=None, redis_url=URL, redis_sentinel_master="")
    assert Settings(_env_file=None, redis_url=URL).redis_sentinel_master == "agents"
