"""Health of the local stack: every server answers and every engine worker replies to ping."""

from __future__ import annotations

import asyncio
import base64
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from agents.nats_client import server_list
from agents.redis_clients import new_redis
from agents.settings import Settings

READY_TIMEOUT_SECONDS = 120.0


@dataclass
class HealthReport:
    """Outcome of each check, by piece."""

    checks: dict[str, bool] = field(default_factory=dict)
    workers: list[str] = field(default_factory=list)
    expected_workers: int = 0

    @property
    def healthy(self) -> bool:
        """Every check passed."""
        return all(self.checks.values()) and len(self.workers) >= self.expected_workers

    def line(self) -> str:
        """One-line summary, e.g. `healthy: redis ok, postgres ok, ... workers 4/4`."""
        parts = [f"{name} {'ok' if ok else 'DOWN'}" for name, ok in self.checks.items()]
        parts.append(f"workers {len(self.workers)}/{self.expected_workers}")
        state = "[green]healthy[/green]" if self.healthy else "[red]unhealthy[/red]"
        return f"{state}: " + ", ".join(parts)


def _redis_ok(settings: Settings) -> bool:
    with new_redis(settings, socket_timeout=2, socket_connect_timeout=2) as client:
        return bool(client.ping())


def _postgres_ok(url: str) -> bool:
    with psycopg.connect(url, connect_timeout=2) as conn:
        return conn.execute("SELECT 1").fetchone() == (1,)


def _nats_ok(url: str) -> bool:
    import nats

    async def probe() -> bool:
        client = await nats.connect(server_list(url), connect_timeout=2, max_reconnect_attempts=0)
        await client.close()
        return True

    return asyncio.run(probe())


def flower_request(url: str, basic_auth: str | None) -> urllib.request.Request:
    """A GET of Flower's `url` carrying FLOWER_BASIC_AUTH (`user:password`) when set."""
    request = urllib.request.Request(url)
    if basic_auth:
        token = base64.b64encode(basic_auth.encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    return request


def _flower_ok(url: str, basic_auth: str | None = None) -> bool:
    # Flower 2.x answers /healthcheck without auth; with credentials set, an API call that needs
    # them (and only reads Flower's memory) also proves that they are the ones Flower accepts.
    paths = ["/healthcheck", "/api/task/types"] if basic_auth else ["/healthcheck"]
    for path in paths:
        request = flower_request(f"{url}{path}", basic_auth)
        # FLOWER_URL is the operator's own setting (http), not input from a request.
        with urllib.request.urlopen(request, timeout=2) as response:  # nosec B310 # FLOWER_URL, see above
            if response.status != 200:
                return False
    return True


def _safe(check: Callable[[str], bool], url: str) -> bool:
    try:
        return check(url)
    except Exception:
        return False


def check_once(settings: Settings, expected: list[str]) -> HealthReport:
    """Run every check once."""
    from tasks import app

    report = HealthReport(expected_workers=len(expected))
    report.checks["redis"] = _safe(lambda _url: _redis_ok(settings), settings.redis_url)
    report.checks["postgres"] = _safe(_postgres_ok, settings.database_url)
    report.checks["nats"] = _safe(_nats_ok, settings.nats_url)
    report.checks["flower"] = _safe(
        lambda url: _flower_ok(url, settings.flower_basic_auth), settings.flower_url
    )
    if report.checks["redis"]:
        replies = app.control.ping(timeout=1.0)
        names = {name.partition("@")[0] for reply in replies for name in reply}
        report.workers = sorted(names & set(expected))
    return report


def wait_until_healthy(settings: Settings, expected: list[str], stop: Callable[[], bool]) -> HealthReport:
    """Poll until healthy, stopped, or READY_TIMEOUT_SECONDS passed; returns the last report."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    report = check_once(settings, expected)
    while not report.healthy and not stop() and time.monotonic() < deadline:
        time.sleep(1.0)
        report = check_once(settings, expected)
    return report
