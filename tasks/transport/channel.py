"""The reliable-fetch channel: kombu's Redis channel whose BRPOP is replaced by one Lua script.

Why: between kombu's BRPOP reply and its unacked pipeline (two round trips) a message exists
only in the worker's socket, so a SIGKILL there loses it (kombu #305; `make chaos` lost about one
request per kill). Here one script pops and records atomically (tasks/transport/scripts.py
FETCH). A script cannot block, so an empty fetch backs off (1 ms doubling to
`idle_poll_max_seconds`) on the event loop's timers, and a fetch that found messages is followed
by the next one at once. Channels that only consume no_ack queues (remote-control replies) keep
kombu's BRPOP: nothing of theirs is ever recorded as unacked.

An idle channel that consumes one queue does not poll: once its pauses reach the longest, it
waits on the queue's default-priority list with `BLMOVE list list RIGHT RIGHT` (Redis blocks until
the list has a message, then moves it from its tail to its tail: nothing leaves Redis and the
order stays), for at most `brpop_timeout` (1 s), then fetches. Polling cost an idle worker ~1% of
a core, which a saturated 2-core `make run` felt (docs/benchmarks.md); a message of another
priority reaches an idle worker within that second.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections import Counter
from collections.abc import Sequence
from queue import Empty
from time import monotonic, sleep, time
from typing import Any
from uuid import uuid4

import structlog
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from redis.exceptions import NoScriptError, ResponseError

from agents.names import BROKER_MALFORMED_KEY, broker_owned_key
from tasks.internals.kombu import deliver, mark_acked, remove_unacked
from tasks.transport import envelope, recovery
from tasks.transport.replication import ReplicatedPublish
from tasks.transport.scripts import FETCH

log = structlog.get_logger("agents.transport")

# Messages taken per fetch at most (bounded also by the consumer's prefetch window).
BULK_MAX = 200
FIRST_IDLE_PAUSE_SECONDS = 0.001


class QoS(kombu_redis.QoS):
    """Redis QoS whose unacked entries are written by the fetch and which acks many at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._recorded: set[str] = set()

    def mark_recorded(self, delivery_tags: Sequence[str]) -> None:
        """These messages' unacked entries already exist (written by the fetch script)."""
        self._recorded.update(delivery_tags)

    def forget_recorded(self, delivery_tag: str) -> None:
        """A recorded message that will not be delivered after all (moved aside)."""
        self._recorded.discard(delivery_tag)

    def append(self, message: Any, delivery_tag: str) -> None:
        """Track a delivered message; write its unacked entries only if the fetch did not."""
        if delivery_tag in self._recorded:
            self._recorded.discard(delivery_tag)
            virtual.QoS.append(self, message, delivery_tag)
        else:
            super().append(message, delivery_tag)

    def _remove_from_indices(self, delivery_tag: str, pipe: Any = None) -> Any:
        # kombu's ack, reject and restore all go through here: the owned set follows them.
        with self.pipe_or_acquire(pipe) as pipe:
            return (
                pipe.zrem(self.unacked_index_key, delivery_tag)
                .hdel(self.unacked_key, delivery_tag)
                .srem(self.channel.owned_key, delivery_tag)
            )

    def restore_unacked_once(self, stderr: Any = None) -> Any:
        """kombu's restore at channel close, unless the connection is already gone: then kombu
        would rebuild a pool from `connection.client`, which is None by now, and the
        AttributeError killed the worker ("Unrecoverable error", seen in a Sentinel failover
        drill). The messages stay recorded under this channel's consumer id, whose heartbeat
        stops, so the dead-consumer sweep puts them back (tasks/transport/recovery.py)."""
        if getattr(self.channel.connection, "client", None) is None:
            log.warning("broker_restore_at_close_skipped", consumer=self.channel.consumer_id)
            return None
        return super().restore_unacked_once(stderr)

    def ack_many(self, delivery_tags: Sequence[str]) -> None:
        """Ack several messages with one pipeline."""
        with self.pipe_or_acquire() as pipe:
            for tag in delivery_tags:
                remove_unacked(self, tag, pipe)
            pipe.execute()
        for tag in delivery_tags:
            virtual.QoS.ack(self, tag)


class ReliableChannel(ReplicatedPublish):
    """Redis channel that fetches with FETCH instead of BRPOP (see the module docstring).

    `_brpop_start`, `_brpop_read` and the attributes they reset are kombu's private parts
    (tasks/internals/kombu.py)."""

    QoS = QoS
    Message = envelope.Message  # refuses (Malformed) what kombu's Message() or Celery cannot read
    from_transport_options = (  # type: ignore[assignment]
        *ReplicatedPublish.from_transport_options,
        "consumer_dead_seconds",
        "idle_poll_max_seconds",
        "wake_priority",
    )
    consumer_dead_seconds = recovery.DEFAULT_DEAD_AFTER_SECONDS
    # The longest wait between empty fetches: the idle cost (one script per channel per pause)
    # against the latency a message sees on an idle worker.
    idle_poll_max_seconds = 0.05
    # The priority step whose list an idle channel waits on: where messages without one land.
    wake_priority = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.global_keyprefix:
            raise ValueError(
                "tasks.transport does not support kombu's global_keyprefix (its fetch script names "
                "every key); use a Redis database of its own, or BROKER_RELIABLE_FETCH=false"
            )
        # host:pid:random, so an operator (and `make chaos`) can tell whose messages came back.
        self.consumer_id = f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:12]}"
        self.owned_key = broker_owned_key(self.consumer_id)
        self.cadence = recovery.Cadence(float(self.consumer_dead_seconds))
        self._fetching = False  # the pending command is FETCH (else kombu's BRPOP, or BLMOVE)
        self._waiting = False  # the pending command is the idle wait (BLMOVE)
        self._dormant = False  # idle long enough to wait instead of polling
        self.can_wait = True  # the server has BLMOVE (Redis 6.2+)
        self._idle_pause = 0.0
        self._next_fetch_at = 0.0
        self._heartbeat_at = -1e9
        self._took_messages = False
        self._no_ack_queues: set[str] = set()

    def basic_consume(self, queue: str, *args: Any, **kwargs: Any) -> Any:
        no_ack = bool(kwargs.get("no_ack", args[0] if args else False))
        (self._no_ack_queues.add if no_ack else self._no_ack_queues.discard)(queue)
        return super().basic_consume(queue, *args, **kwargs)

    def _event_loop(self) -> Any:
        return getattr(self.connection, "event_loop", None)

    # -- fetching ---------------------------------------------------------------------------

    def _brpop_start(self, timeout: int | None = None) -> None:
        queues = self._queue_cycle.consume(len(self.active_queues))
        if not queues:
            return
        unrecorded = self._no_ack_queues
        if all(queue in unrecorded for queue in queues):
            self._fetching = False
            kombu_redis.Channel._brpop_start(self, timeout)
            return
        recorded = [queue for queue in queues if queue not in unrecorded]
        if self._dormant and self.can_wait and len(set(recorded)) == 1 and self._event_loop() is not None:
            self._wait_for(recorded[0])
            return
        wait = self._next_fetch_at - monotonic()
        if wait > 0:
            if self._event_loop() is not None:
                return  # the event loop's timer brings it back once the pause is over
            sleep(wait)  # no event loop (a plain kombu consumer): pause here
        self.heartbeat_if_due()
        keys = [self._q_for_pri(queue, pri) for pri in self.priority_steps for queue in queues]
        record = "".join("0" if queue in unrecorded else "1" for _ in self.priority_steps for queue in queues)
        room = self.qos.can_consume_max_estimate()
        want = BULK_MAX if room is None else max(1, min(BULK_MAX, room))
        self._in_poll = self.client.connection
        self._brpop_sent_at = monotonic()  # type: ignore[assignment]  # kombu declares it None
        self._fetching, self._waiting = True, False
        fixed = [self.unacked_key, self.unacked_index_key, self.owned_key, BROKER_MALFORMED_KEY]
        self.client.connection.send_command(
            "EVALSHA", FETCH.sha, len(fixed) + len(keys), *fixed, *keys, want, record, time()
        )

    def _wait_for(self, queue: str) -> None:
        """Block server-side until `queue`'s default-priority list holds a message (see above)."""
        key = self._q_for_pri(queue, self.wake_priority)
        self._in_poll = self.client.connection
        self._brpop_sent_at = monotonic()  # type: ignore[assignment]  # kombu's health check reads it
        self._fetching, self._waiting = False, True
        self.client.connection.send_command("BLMOVE", key, key, "RIGHT", "RIGHT", self.brpop_timeout)

    def _brpop_read(self, **options: Any) -> bool:
        if self._waiting:
            return self._wait_read(**options)
        if not self._fetching:
            return bool(kombu_redis.Channel._brpop_read(self, **options))
        reply: list[Any] | None = None
        try:
            try:
                reply = self.client.parse_response(self.client.connection, "EVALSHA", **options)
            except NoScriptError:
                with self.conn_or_acquire() as client:  # Redis restarted: its script cache is empty
                    client.script_load(FETCH.text)
                raise Empty() from None
            except self.connection_errors:
                self.client.connection.disconnect()
                raise
        finally:
            self._in_poll = None  # type: ignore[assignment]  # kombu's own reset, as in its _brpop_read
            self._flush_brpop_reauth()
        if not reply:
            self._pause_after_empty_fetch()
            raise Empty()
        self._idle_pause = 0.0
        self._next_fetch_at = 0.0
        self._dormant = False
        key, aside, *pairs = reply
        queue = bytes_to_str(key).rsplit(self.sep, 1)[0]
        self._queue_cycle.rotate(queue)
        for why, count in Counter(bytes_to_str(why) for why in aside).items():  # moved aside by FETCH
            envelope.report(queue, why, count)
        recorded = queue not in self._no_ack_queues
        taken: list[tuple[str, bytes, dict[str, Any]]] = []
        for tag, raw in zip(pairs[::2], pairs[1::2], strict=True):
            try:
                taken.append((bytes_to_str(tag), raw, envelope.decode(raw)))
            except envelope.Malformed as exc:
                envelope.set_aside(self, queue, bytes_to_str(tag), raw, recorded, str(exc))
        if recorded:
            self._took_messages = True
            self.qos.mark_recorded([tag for tag, _, _ in taken])
        for tag, raw, payload in taken:
            try:
                deliver(self, payload, queue)
            except envelope.Malformed as exc:  # raised building the Message: nothing else done yet
                self.qos.forget_recorded(tag)
                envelope.set_aside(self, queue, tag, raw, recorded, str(exc))
        return True

    def _wait_read(self, **options: Any) -> bool:
        """The idle wait ended (a message arrived, or the timeout): fetch at once."""
        try:
            self.client.parse_response(self.client.connection, "BLMOVE", **options)
        except self.connection_errors:
            self.client.connection.disconnect()
            raise
        except ResponseError as exc:  # a Redis older than 6.2 has no BLMOVE: poll instead
            log.warning("broker_idle_wait_unavailable", consumer=self.consumer_id, error=str(exc))
            self.can_wait = False
        finally:
            self._in_poll = None  # type: ignore[assignment]
            self._waiting = False
            self._flush_brpop_reauth()
        # Fetch next, whatever woke it (a wait answered at once would otherwise spin here); the
        # pause stays at its longest, so an empty fetch goes back to waiting.
        self._dormant = False
        self._next_fetch_at = 0.0
        raise Empty()

    def _pause_after_empty_fetch(self) -> None:
        if self._idle_pause >= self.idle_poll_max_seconds:
            self._dormant = True  # the next start waits (one queue) or polls at the longest pause
        doubled = max(FIRST_IDLE_PAUSE_SECONDS, self._idle_pause * 2)
        self._idle_pause = min(self.idle_poll_max_seconds, doubled)
        self._next_fetch_at = monotonic() + self._idle_pause
        loop = self._event_loop()
        if loop is not None:
            loop.call_later(self._idle_pause, _wake)

    # -- liveness and shutdown ----------------------------------------------------------------

    def heartbeat_if_due(self, force: bool = False) -> None:
        """Heartbeat if the last one is older than the cadence asks (cheap to call often)."""
        now = monotonic()
        if force or now - self._heartbeat_at >= self.cadence.heartbeat_every:
            self._heartbeat_at = now
            with self.conn_or_acquire() as client:
                recovery.heartbeat(client, self.consumer_id)

    def sweep_dead_consumers(self) -> int:
        """Put back the messages of consumers whose heartbeats stopped."""
        with self.conn_or_acquire() as client:
            return recovery.sweep(client, self.qos, self.consumer_id, self.cadence)

    def close(self) -> None:
        """Read a fetch reply still in the socket, then put back everything this consumer holds.

        The reply's messages are recorded as owned, so nothing is delivered at close (a warm
        shutdown's pending BRPOP reply is the form of the loss in celery #4354)."""
        if self._fetching and self._in_poll and not self._waiting:
            # Whatever that reply held is in the owned set, restored below.
            with contextlib.suppress(Exception):
                self.client.parse_response(self.client.connection, "EVALSHA")
            self._in_poll = None  # type: ignore[assignment]
        if self._took_messages and not self.closed:
            try:
                with self.conn_or_acquire() as client:
                    for tag in recovery.forget(client, self.consumer_id):
                        self.qos.restore_by_tag(tag, client)
            except self.connection_errors:
                log.warning("broker_restore_at_close_failed", consumer=self.consumer_id)
        super().close()


def _wake() -> None:
    """A timer's only job: end the event loop's poll so the next fetch is sent."""


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with the reliable fetch, heartbeats and the dead-consumer sweep."""

    Channel = ReliableChannel
    # Errors after which kombu reconnects and tries again (`Connection.ensure`: Celery's publish
    # retry). kombu's Redis transport names none, and kombu then gives up after the first retry
    # that fails on a fresh connection: mid-failover, while the Sentinels still name the dead
    # primary, every `.delay()` failed within milliseconds (tests/agents/stack/test_sentinel.py).
    recoverable_connection_errors = kombu_redis.get_redis_error_classes()[0]
    recoverable_channel_errors = ()
    event_loop: Any = None  # the worker's hub once registered; None for a plain kombu consumer
    _reliable_timers: list[Any] = []  # replaced per connection, never mutated

    def register_with_event_loop(self, connection: Any, loop: Any) -> None:
        super().register_with_event_loop(connection, loop)
        self.event_loop = loop
        for timer in self._reliable_timers:
            timer.cancel()  # timers of a previous connection
        options = connection.client.transport_options
        dead_after = options.get("consumer_dead_seconds", recovery.DEFAULT_DEAD_AFTER_SECONDS)
        cadence = recovery.Cadence(float(dead_after))
        self._reliable_timers = [
            loop.call_repeatedly(cadence.heartbeat_every, self._heartbeat),
            loop.call_repeatedly(cadence.sweep_every, self._sweep),
        ]

    def _consuming(self) -> list[ReliableChannel]:
        channels: list[Any] = self.channels or []  # kombu types it None until the first channel
        return [c for c in channels if isinstance(c, ReliableChannel) and not c.closed]

    def _heartbeat(self) -> None:
        for channel in self._consuming():
            if channel._took_messages or channel.active_queues:
                try:
                    channel.heartbeat_if_due(force=True)
                except (*self.connection_errors, *self.channel_errors):
                    log.debug("broker_heartbeat_failed", exc_info=True)  # the event loop reconnects

    def _sweep(self) -> None:
        for channel in self._consuming():
            if channel.active_queues:
                try:
                    channel.sweep_dead_consumers()
                except (*self.connection_errors, *self.channel_errors):
                    log.debug("broker_sweep_failed", exc_info=True)
                return  # one channel sweeps for the whole process


def ack_many(messages: Sequence[Any]) -> bool:
    """Ack messages of one reliable channel in one round trip; False if not possible here."""
    channels = {id(m.channel) for m in messages}
    if not messages or len(channels) != 1 or not isinstance(messages[0].channel.qos, QoS):
        return False
    if any(m.acknowledged for m in messages):
        return False
    messages[0].channel.qos.ack_many([m.delivery_tag for m in messages])
    for message in messages:
        mark_acked(message)
    return True
