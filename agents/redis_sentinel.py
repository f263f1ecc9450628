"""Redis behind Sentinel: REDIS_URL in Celery's own form, one `sentinel://` URL per Sentinel joined
by `;` (`sentinel://:<password>@host1:26379/0;sentinel://:<password>@host2:26379/0`), with the
master set named by REDIS_SENTINEL_MASTER. The password and database are the Redis server's, the
same in every part (kombu moves on to the next part after a connection error, and takes its
password from there); the Sentinels' own password is REDIS_SENTINEL_PASSWORD. Pure: parsing and
the problems it finds.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

SENTINEL_SCHEME = "sentinel"
SENTINEL_PORT = 26379
URL_SEPARATOR = ";"


@dataclass(frozen=True, slots=True)
class SentinelTarget:
    """Where the Sentinels are and what to ask their master for."""

    sentinels: tuple[tuple[str, int], ...]
    password: str | None  # the Redis server's (AUTH to the master)
    username: str | None
    db: int


def is_sentinel(url: str) -> bool:
    """REDIS_URL names Sentinels rather than a Redis server."""
    return url.strip().startswith(f"{SENTINEL_SCHEME}://")


def parse(url: str) -> SentinelTarget:
    """The Sentinels of a `sentinel://...;sentinel://...` URL; ValueError naming what is wrong."""
    sentinels: list[tuple[str, int]] = []
    first = None
    for chunk in (c.strip() for c in url.split(URL_SEPARATOR)):
        if not chunk:
            continue
        parts = urlsplit(chunk)
        if parts.scheme != SENTINEL_SCHEME:
            raise ValueError(
                f"REDIS_URL mixes {parts.scheme}:// into a sentinel:// list; every part names a Sentinel"
            )
        try:
            port = parts.port or SENTINEL_PORT
        except ValueError as exc:
            raise ValueError(f"REDIS_URL has a Sentinel with a bad port: {exc}") from None
        if not parts.hostname:
            raise ValueError("REDIS_URL has a sentinel:// part without a host")
        sentinels.append((parts.hostname, port))
        first = first or parts
        if (parts.username, parts.password, parts.path) != (first.username, first.password, first.path):
            raise ValueError(
                "REDIS_URL's sentinel:// parts differ in user, password or database; kombu uses each "
                "part's own after a failover, so write the same in every part"
            )
    if first is None:
        raise ValueError("REDIS_URL names no Sentinel")
    path = first.path.strip("/") or "0"
    if not path.isdigit():
        raise ValueError(f"REDIS_URL's database must be a number, got {path!r}")
    return SentinelTarget(
        sentinels=tuple(sentinels),
        password=unquote(first.password) if first.password else None,
        username=unquote(first.username) if first.username else None,
        db=int(path),
    )


def sentinel_problem(url: str, master: str, tls_files: bool) -> str | None:
    """Why a sentinel:// REDIS_URL cannot be used with these settings, or None."""
    if not is_sentinel(url):
        return None
    try:
        parse(url)
    except ValueError as exc:
        return str(exc)
    if not master:
        return "REDIS_SENTINEL_MASTER is empty: a sentinel:// REDIS_URL needs the master set's name"
    if tls_files:
        return "REDIS_TLS_* files are not supported with a sentinel:// REDIS_URL yet (rediss:// only)"
    return None
