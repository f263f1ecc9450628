"""Creates (or widens) the bridge's streams and its durable pull consumer."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import NotFoundError

from agents.bridge.mapping import covers, minimal_subjects
from agents.settings import Settings

# Limits retention: the stream keeps events for the old system too (rollback), for a week.
STREAM_MAX_AGE_SECONDS = 7 * 24 * 3600


class BridgeConfigError(Exception):
    """The stream's subjects would capture the bridge's own output."""


async def ensure_stream(
    js: JetStreamContext, name: str, subjects: list[str], duplicate_window: float, replicas: int = 1
) -> None:
    """Create the stream, or add missing subjects to it (a new engine brings new subjects).

    `replicas` copies on a JetStream cluster; an existing stream is scaled to it (R1 to R3 when a
    single server grew into a cluster), which JetStream does online.
    """
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        config = StreamConfig(
            name=name,
            subjects=subjects,
            max_age=STREAM_MAX_AGE_SECONDS,
            duplicate_window=duplicate_window,
            num_replicas=replicas,
        )
        await js.add_stream(config)
        return
    have = list(info.config.subjects or [])
    wanted = minimal_subjects([*have, *subjects])
    if sorted(wanted) != sorted(have) or (info.config.num_replicas or 1) != replicas:
        info.config.subjects = wanted
        info.config.num_replicas = replicas
        await js.update_stream(info.config)


async def ensure_bridge_streams(js: JetStreamContext, settings: Settings, subjects: list[str]) -> None:
    """The event stream and, unless disabled, a stream that keeps dead letters."""
    for output in filter(None, (settings.bridge_dlq_subject, settings.bridge_results_subject)):
        clash = [s for s in subjects if covers(s, output)]
        if clash:
            raise BridgeConfigError(f"stream subjects {clash} would capture the bridge's output {output!r}")
    replicas = settings.nats_stream_replicas
    await ensure_stream(
        js, settings.bridge_stream, subjects, settings.bridge_duplicate_window_seconds, replicas
    )
    if settings.bridge_dlq_stream:
        await ensure_stream(js, settings.bridge_dlq_stream, [settings.bridge_dlq_subject], 120.0, replicas)


async def ensure_consumer(js: JetStreamContext, settings: Settings) -> JetStreamContext.PullSubscription:
    """Durable pull consumer; a full config with name and durable_name applies changed settings.

    `pull_subscribe` alone would silently keep an existing consumer's old ack_wait.
    """
    config = ConsumerConfig(
        name=settings.bridge_consumer,
        durable_name=settings.bridge_consumer,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=settings.bridge_ack_wait_seconds,
        # The bridge dead-letters by itself; the server must never drop an event quietly.
        max_deliver=-1,
        max_ack_pending=max(1000, settings.bridge_batch_size * 4),
        max_waiting=512,
    )
    try:
        info = await js.consumer_info(settings.bridge_stream, settings.bridge_consumer)
    except NotFoundError:
        await js.add_consumer(settings.bridge_stream, config)
    else:
        current = info.config
        if (current.ack_wait, current.max_ack_pending) != (config.ack_wait, config.max_ack_pending):
            await js.add_consumer(settings.bridge_stream, config)  # same name: an update
    return await js.pull_subscribe_bind(
        durable=settings.bridge_consumer,
        stream=settings.bridge_stream,
        pending_msgs_limit=max(65536, settings.bridge_batch_size * 4),
    )
