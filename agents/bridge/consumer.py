"""The long-running bridge: pull batches from JetStream, dispatch them, ack only what was published.

One asyncio loop owns the NATS connection; Redis and the Celery producer run in one worker
thread so heartbeats and in-progress acks keep flowing while a batch is published.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import nats.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from agents.bridge import metrics
from agents.bridge.dispatch import Action, Dispatcher, Outcome
from agents.bridge.events import Event, dead_letter_body, task_id_for
from agents.bridge.jetstream import ensure_bridge_streams, ensure_consumer
from agents.bridge.traffic import current_route
from agents.connections import redis_client
from agents.nats_client import connect
from agents.settings import Settings
from agents.telemetry import bridge_lag

log = structlog.get_logger("agents.bridge")
T = TypeVar("T")
LAG_EVERY_SECONDS = 2.0


def to_event(msg: Msg) -> Event:
    """The parts of a JetStream message the dispatcher needs."""
    return Event(msg.subject, msg.data, dict(msg.headers or {}), msg.metadata.num_delivered)


class Bridge:
    """Consumes until `stop` is set; a batch in flight is always finished first."""

    def __init__(self, settings: Settings, dispatcher: Dispatcher, stream_subjects: list[str]) -> None:
        self.settings = settings
        self.dispatcher = dispatcher
        self.stream_subjects = stream_subjects
        self.stop = asyncio.Event()
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="bridge-publish")
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._route_checked = 0.0
        self._paused = False
        self._lag_checked = 0.0
        self._id = bridge_lag.bridge_id()

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    async def _connect(self) -> JetStreamContext.PullSubscription:
        delay = 0.5
        while True:
            try:
                self._nc = await connect("agents-bridge", self.settings.nats_url)
                self._js = self._nc.jetstream()
                await ensure_bridge_streams(self._js, self.settings, self.stream_subjects)
                sub = await ensure_consumer(self._js, self.settings)
                log.info("bridge_started", stream=self.settings.bridge_stream, subjects=self.stream_subjects)
                return sub
            except (OSError, nats.errors.Error, TimeoutError) as exc:
                log.warning("bridge_connect_failed", error=repr(exc), retry_in=delay)
                if self._nc is not None:
                    with contextlib.suppress(Exception):
                        await self._nc.close()
                if await self._sleep(delay):
                    raise asyncio.CancelledError from exc
                delay = min(delay * 2, 10.0)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopped; True when stop was requested."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)
        return self.stop.is_set()

    async def run(self) -> None:
        """Consume until stopped, then close the connection after the last batch was settled."""
        try:
            sub = await self._connect()
        except asyncio.CancelledError:
            return
        # The next batch is fetched while this one is published: NATS and Redis work in parallel.
        ahead: asyncio.Future[list[Msg]] | None = None
        try:
            while ahead is not None or not self.stop.is_set():
                if ahead is None:
                    if not await self._consuming():
                        await self._refresh_lag(sub)  # paused: the lag grows, and is still reported
                        await self._sleep(self.settings.bridge_route_poll_seconds)
                        continue
                    ahead = asyncio.ensure_future(self._fetch(sub))
                msgs, ahead = await ahead, None
                if not msgs:
                    continue
                if not self.stop.is_set() and not self._paused:
                    ahead = asyncio.ensure_future(self._fetch(sub))
                if await self.handle(msgs):  # backpressure: give the workers time to drain
                    await self._sleep(self.settings.bridge_nak_delay_seconds)
        finally:
            self._thread.shutdown(wait=True)
            with contextlib.suppress(Exception):  # a clean stop is no silent bridge
                await asyncio.get_running_loop().run_in_executor(None, self._withdraw_lag)
            assert self._nc is not None  # nosec B101 # narrows the type for mypy, not a check
            # Every batch was settled and flushed already; drain() would wait on the idle pull inbox.
            with contextlib.suppress(Exception):
                await self._nc.flush(timeout=5)
            with contextlib.suppress(Exception):
                await self._nc.close()
            log.info("bridge_stopped")

    async def _fetch(self, sub: JetStreamContext.PullSubscription) -> list[Msg]:
        """One pull; an empty list when nothing came or NATS is away (it reconnects by itself)."""
        await self._refresh_lag(sub)
        try:
            return await sub.fetch(
                self.settings.bridge_batch_size, timeout=self.settings.bridge_fetch_timeout_seconds
            )
        except (nats.errors.TimeoutError, TimeoutError):  # nothing arrived in time
            return []
        except (nats.errors.Error, OSError) as exc:
            log.warning("bridge_fetch_failed", error=repr(exc))
            await self._sleep(0.5)
            return []

    async def _consuming(self) -> bool:
        now = time.monotonic()
        if now - self._route_checked >= self.settings.bridge_route_poll_seconds:
            self._route_checked = now
            try:
                route = await self._in_thread(current_route, redis_client(), self.settings.traffic_route)
            except Exception as exc:  # Redis down: keep the last known route
                log.warning("bridge_route_unreadable", error=repr(exc))
            else:
                paused = route == "old_system"
                if paused != self._paused:
                    log.warning("bridge_paused" if paused else "bridge_resumed", traffic_route=route)
                self._paused = paused
                metrics.PAUSED.set(1 if paused else 0)
        return not self._paused

    async def _refresh_lag(self, sub: JetStreamContext.PullSubscription) -> None:
        if time.monotonic() - self._lag_checked < LAG_EVERY_SECONDS:
            return
        self._lag_checked = time.monotonic()
        with contextlib.suppress(Exception):
            lag = (await sub.consumer_info()).num_pending or 0
            metrics.LAG.set(lag)
            # For the monitor (agents/telemetry/bridge_lag.py), off the publish thread and not
            # awaited: a slow Redis must not delay the next fetch. Unread lag is never written,
            # so the report goes stale rather than wrong.
            asyncio.get_running_loop().run_in_executor(None, self._report_lag, lag, self._paused)

    def _report_lag(self, lag: int, paused: bool) -> None:
        try:
            bridge_lag.report(redis_client(), self._id, lag, paused)
        except Exception as exc:  # Redis away: the report ages and the monitor says so
            log.warning("bridge_lag_report_failed", error=repr(exc))

    def _withdraw_lag(self) -> None:
        bridge_lag.withdraw(redis_client(), self._id)

    async def handle(self, msgs: Sequence[Msg]) -> bool:
        """Dispatch one batch and settle every message; True when routing reported backpressure."""
        events = [to_event(m) for m in msgs]
        metrics.EVENTS_IN.inc(len(events))
        metrics.REDELIVERED.inc(sum(1 for e in events if e.num_delivered > 1))
        work = asyncio.ensure_future(self._in_thread(self.dispatcher.dispatch, events))
        while True:
            done, _ = await asyncio.wait({work}, timeout=self.settings.bridge_ack_wait_seconds / 3)
            if done:
                break
            for msg in msgs:  # a slow publish must not let ack_wait expire and redeliver
                with contextlib.suppress(Exception):
                    await msg.in_progress()
        try:
            outcomes: list[Outcome] = work.result()
        except Exception as exc:  # Redis down while planning: everything comes back later
            log.warning("bridge_dispatch_failed", error=repr(exc))
            outcomes = [self.dispatcher.retry_later(e, "dispatch_failed", repr(exc)) for e in events]
        await self._settle(msgs, events, outcomes)
        return any(o.kind == "backpressure" for o in outcomes)

    async def _settle(
        self, msgs: Sequence[Msg], events: Sequence[Event], outcomes: Sequence[Outcome]
    ) -> None:
        dead: dict[str, int] = {}
        rejected: list[tuple[Event, Outcome]] = []
        for msg, event, outcome in zip(msgs, events, outcomes, strict=True):
            try:
                if outcome.action is Action.ACK:
                    await msg.ack()
                    (metrics.DUPLICATES if outcome.duplicate else metrics.PUBLISHED).inc()
                elif outcome.action is Action.NAK:
                    await msg.nak(delay=outcome.delay)
                    metrics.NACKED.labels(outcome.kind).inc()
                else:
                    await self._dead_letter(msg, event, outcome)
                    dead[outcome.kind] = dead.get(outcome.kind, 0) + 1
                    rejected.append((event, outcome))
            except Exception as exc:  # not settled: ack_wait brings it back, the markers dedup it
                log.warning("bridge_settle_failed", subject=event.subject, error=repr(exc))
        if dead:
            log.info("bridge_dead_lettered", kinds=dead)
            with contextlib.suppress(Exception):
                await self._in_thread(_count_dead, dead, rejected)
        assert self._nc is not None  # nosec B101 # narrows the type for mypy, not a check
        with contextlib.suppress(Exception):
            await self._nc.flush(timeout=5)  # the acks have reached the server

    async def _dead_letter(self, msg: Msg, event: Event, outcome: Outcome) -> None:
        body = dead_letter_body(event, outcome.kind, outcome.error)
        subject = self.settings.bridge_dlq_subject
        assert self._nc is not None and self._js is not None  # nosec B101 # narrows types for mypy
        try:
            if self.settings.bridge_dlq_stream:
                await self._js.publish(subject, body, timeout=5)  # stored before the event goes
            else:
                await self._nc.publish(subject, body)
        except Exception as exc:  # keep the event rather than lose its dead letter
            log.warning("bridge_dead_letter_failed", error=repr(exc))
            await msg.nak(delay=self.settings.bridge_nak_delay_max_seconds)
            return
        await msg.term()
        metrics.DEAD_LETTERED.labels(outcome.kind).inc()


def _count_dead(kinds: dict[str, int], rejected: Sequence[tuple[Event, Outcome]]) -> None:
    """Count dead letters and record each as a `rejected` task in the durable history."""
    from agents.lifecycle import LifecycleEvent
    from agents.names import BRIDGE_TASK, COUNTERS_KEY
    from agents.recorder import collecting, count, record
    from agents.statuses import REJECTED
    from agents.telemetry.catalog import AGENT_TASKS
    from agents.telemetry.tally import Tally

    pipe = redis_client().pipeline(transaction=False)
    for kind, how_many in kinds.items():
        pipe.hincrby(COUNTERS_KEY, f"dead_letter:{kind}", how_many)
    pipe.execute()
    now = time.time()
    events = [
        LifecycleEvent(
            task_id_for(event),
            REJECTED,
            at=now,
            finished_at=now,
            task_name=BRIDGE_TASK,
            task_type=event.subject[:64],
            error=f"{outcome.kind}: {outcome.error}",
        )
        for event, outcome in rejected
    ]
    tally = Tally()
    tally.inc(AGENT_TASKS, ("bridge", REJECTED), len(events))
    with collecting(redis_client()):  # the rows and their count in one round trip
        record(redis_client(), events)
        count(redis_client(), tally)
