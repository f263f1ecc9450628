"""Bridge fixtures: clean streams per test, a real `agents bridge` process, NATS helpers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from agents.bridge.jetstream import ensure_bridge_streams
from agents.bridge.service import subject_map
from agents.settings import Settings, get_settings
from agents.stack.servers import ServerProcess
from tests.conftest import ROOT, SESSION_HOME
from tests.engines import COUNTS_KEY

# Short delays so redeliveries and dead letters happen within a test's time.
BRIDGE_ENV = {
    "BRIDGE_FETCH_TIMEOUT_SECONDS": "0.3",
    "BRIDGE_NAK_DELAY_SECONDS": "0.1",
    "BRIDGE_NAK_DELAY_MAX_SECONDS": "0.4",
    "BRIDGE_MAX_DELIVERIES": "3",
    "BRIDGE_ROUTE_POLL_SECONDS": "0.2",
    "BRIDGE_ACK_WAIT_SECONDS": "3",
}
Published = tuple[str, bytes, dict[str, str] | None]


def settings(**overrides: Any) -> Settings:
    """The test process's settings with bridge overrides (as the bridge process will see them)."""
    return get_settings().model_copy(update=overrides)


@contextlib.asynccontextmanager
async def connected() -> AsyncIterator[Client]:
    """A test-side NATS connection, closed whatever happens."""
    nc = await nats.connect(get_settings().nats_url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    try:
        yield nc
    finally:
        await nc.close()


def prepare_streams(**overrides: Any) -> None:
    """Delete the bridge's streams (and so its consumer), then create them as the bridge would."""

    async def go() -> None:
        async with connected() as nc:
            js = nc.jetstream()
            s = settings(**overrides)
            for name in (s.bridge_stream, s.bridge_dlq_stream):
                with contextlib.suppress(NotFoundError):
                    await js.delete_stream(name)
            await ensure_bridge_streams(js, s, (await subject_map(s)).stream_subjects())

    asyncio.run(go())


def publish(events: Sequence[Published], retry_seconds: float = 30.0) -> None:
    """JetStream-publish each event, retrying (same Nats-Msg-Id) until the server stored it."""

    async def go() -> None:
        async with connected() as nc:
            js = nc.jetstream()
            for subject, data, headers in events:
                deadline = time.monotonic() + retry_seconds
                while True:
                    try:
                        await js.publish(subject, data, headers=headers, timeout=2)
                        break
                    except Exception:
                        if time.monotonic() > deadline:
                            raise
                        await asyncio.sleep(0.1)

    asyncio.run(go())


def dead_letters() -> list[dict[str, Any]]:
    """Every message kept in the dead-letter stream, oldest first."""

    async def go() -> list[dict[str, Any]]:
        async with connected() as nc:
            js = nc.jetstream()
            info = await js.stream_info(get_settings().bridge_dlq_stream)
            if not info.state.messages:
                return []
            seqs = range(info.state.first_seq, info.state.last_seq + 1)
            stream = get_settings().bridge_dlq_stream
            return [json.loads((await js.get_msg(stream, seq)).data or b"{}") for seq in seqs]

    return asyncio.run(go())


def drop_consumer() -> None:
    """Delete the bridge's durable consumer: a new one delivers the whole stream again."""

    async def go() -> None:
        async with connected() as nc:
            s = get_settings()
            await nc.jetstream().delete_consumer(s.bridge_stream, s.bridge_consumer)

    asyncio.run(go())


def consumer_state() -> Any:
    """The bridge consumer's info (num_pending, num_ack_pending, ...)."""

    async def go() -> Any:
        async with connected() as nc:
            s = get_settings()
            return await nc.jetstream().consumer_info(s.bridge_stream, s.bridge_consumer)

    return asyncio.run(go())


def drained() -> bool:
    """Every stored event was delivered to the bridge and settled."""
    state = consumer_state()
    return bool(state.num_pending == 0 and state.num_ack_pending == 0)


def counts(redis_client: Any) -> dict[str, int]:
    """Executions of the counter engine per task id."""
    return {k.decode(): int(v) for k, v in redis_client.hgetall(COUNTS_KEY).items()}


def wait_until(check: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll `check`; an exception (e.g. the consumer does not exist yet) counts as not yet."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:
            last_error = exc
        time.sleep(0.1)
    raise TimeoutError(f"{what} not reached within {timeout}s (last error {last_error!r})")


class BridgeRunner:
    """Starts real `agents bridge` processes and stops them with SIGTERM (graceful)."""

    def __init__(self, log: Path) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        self.log = log

    def start(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        with open(self.log, "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "agents.cli", "bridge", *args],
                cwd=ROOT,
                env=os.environ | BRIDGE_ENV | env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> int:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            return process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise

    def stop_all(self) -> list[int]:
        return [self.stop(p) for p in self.processes]


@pytest.fixture()
def bridge(
    nats_server: ServerProcess, fleet: str, redis_client: Any, request: pytest.FixtureRequest
) -> Iterator[BridgeRunner]:
    """Fresh streams, a clean counter hash and claims, and a runner whose bridges must stop cleanly."""
    prepare_streams()
    # Tests reuse message ids (evt-0, evt-1, ...): yesterday's claims must not skip today's events.
    from db.raw import execute

    execute("DELETE FROM task_claims", ())
    runner = BridgeRunner(SESSION_HOME / f"bridge-{request.node.name[:60]}.log")
    yield runner
    codes = runner.stop_all()
    assert all(code == 0 for code in codes), f"bridge exit codes {codes}; see {runner.log}"
