"""NATS connections: reconnect options shared by all, and one lazy connection per process and loop.

Engine handlers run on a long-lived per-thread event loop (agents/aio.py), so the connection
made by the first `_publish` is reused by later tasks. A forked child never reuses its
parent's socket: the cache is keyed by pid.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from typing import Any

import nats
import structlog
from nats.aio.client import Client

from agents.settings import get_settings

log = structlog.get_logger("agents.nats")

_connections: dict[tuple[int, int], Client] = {}


def server_list(url: str) -> list[str]:
    """NATS_URL as the list nats-py wants: a cluster is given as comma-separated URLs."""
    return [part.strip() for part in url.split(",") if part.strip()]


async def connect(name: str, url: str | None = None) -> Client:
    """A client that reconnects forever with a short wait, logging each disconnect.

    `url` (default NATS_URL) may name several servers, comma-separated: the client connects to
    any of them and, when that one dies, reconnects to another (a cluster also gossips its members).
    """

    async def on_error(exc: Exception) -> None:
        log.warning("nats_error", client=name, error=repr(exc))

    async def on_disconnected() -> None:
        log.warning("nats_disconnected", client=name)

    async def on_reconnected() -> None:
        log.info("nats_reconnected", client=name)

    return await nats.connect(
        server_list(url or get_settings().nats_url),
        name=name,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=2,
        error_cb=on_error,
        disconnected_cb=on_disconnected,
        reconnected_cb=on_reconnected,
    )


async def shared_client() -> Client:
    """This process's connection on the running loop, created on first use."""
    key = (os.getpid(), id(asyncio.get_running_loop()))
    client = _connections.get(key)
    if client is None or client.is_closed:
        client = _connections[key] = await connect(f"agents-engine-{os.getpid()}")
    return client


def encode(data: Any) -> bytes:
    """bytes and str as they are; anything else as JSON."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode()
    return json.dumps(data, default=str).encode()


async def publish(subject: str, data: Any, headers: dict[str, str] | None = None) -> None:
    """Core NATS publish, flushed so the message has left the process when this returns."""
    client = await shared_client()
    await client.publish(subject, encode(data), headers=headers)
    await client.flush(timeout=5)


async def publish_many(messages: Sequence[tuple[str, Any]], timeout: float = 5.0) -> None:
    """Core NATS publishes of (subject, data) pairs, flushed once for all of them; TimeoutError
    after `timeout` seconds (the client retries a refused first connection forever, and the
    monitor's and the analysis's notices must never wait for NATS)."""

    async def send() -> None:
        client = await shared_client()
        for subject, data in messages:
            await client.publish(subject, encode(data))
        await client.flush(timeout=int(timeout))

    await asyncio.wait_for(send(), timeout)


async def publish_to_stream(subject: str, data: Any, headers: dict[str, str] | None = None) -> Any:
    """JetStream publish; returns the server's PubAck (stream and sequence) once stored."""
    client = await shared_client()
    return await client.jetstream().publish(subject, encode(data), headers=headers)
