"""Dispatcher against real Redis: publish failures nak and release, redeliveries never publish twice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery

from agents.bridge.dedup import Markers
from agents.bridge.dispatch import Action, Dispatcher
from agents.bridge.events import Event, task_id_for
from agents.bridge.mapping import SubjectMap
from agents.connections import registry
from agents.names import bridge_marker_key, queue_keys
from agents.registry import EngineCard
from agents.settings import get_settings
from agents.stack.servers import free_port
from tasks.app import app
from tasks.publisher import TaskPublisher

pytestmark = pytest.mark.servers
HOST = "dispatch-test@host"


@pytest.fixture()
def live_engine(redis_client: Any) -> Iterator[None]:
    """A heartbeat for my_engine, whose queue no worker consumes (the fleet does not serve it)."""
    for key in queue_keys("my_engine"):
        redis_client.delete(key)
    card = EngineCard(
        engine="my_engine", capabilities=["processing", "analysis"], queue_size=1000, concurrency=1
    )
    registry().announce(HOST, [card], 60)
    yield
    registry().withdraw(HOST, ["my_engine"])
    for key in queue_keys("my_engine"):
        redis_client.delete(key)


def dispatcher(publisher_app: Celery, redis_client: Any) -> Dispatcher:
    settings = get_settings()
    markers = Markers(redis_client, pending_ttl=30, published_ttl=600)
    return Dispatcher(settings, SubjectMap("events", []), markers, TaskPublisher(publisher_app))


def queued(redis_client: Any) -> int:
    return sum(redis_client.llen(k) for k in queue_keys("my_engine"))


def test_publish_failure_naks_and_releases_then_redelivery_publishes_once(
    live_engine: None, redis_client: Any
) -> None:
    event = Event("events.processing.tally", b'{"n": 1}', {"Nats-Msg-Id": "dispatch-1"})
    task_id = task_id_for(event)
    # Given a broker nobody listens on
    dead = Celery("dead", broker=f"redis://127.0.0.1:{free_port()}/0")
    dead.config_from_object("celeryconfig")
    dead.conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"
    # When the publish fails, the event is naked with a delay and its claim released
    [failed] = dispatcher(dead, redis_client).dispatch([event])
    assert (failed.action, failed.kind) == (Action.NAK, "publish_failed")
    assert failed.delay > 0
    assert redis_client.get(bridge_marker_key(task_id)) is None
    # When it is redelivered to a working bridge, it is published once and marked
    working = dispatcher(app, redis_client)
    [ok] = working.dispatch([Event(event.subject, event.data, event.headers, num_delivered=2)])
    assert (ok.action, ok.duplicate, ok.task_id) == (Action.ACK, False, task_id)
    assert redis_client.get(bridge_marker_key(task_id)) == b"published"
    # And a later redelivery, and the same event twice in one batch, publish nothing more
    again = working.dispatch([event, event])
    assert [(o.action, o.duplicate) for o in again] == [(Action.ACK, True), (Action.ACK, True)]
    assert queued(redis_client) == 1


def test_every_event_of_a_mixed_batch_gets_exactly_one_outcome(live_engine: None, redis_client: Any) -> None:
    events = [
        Event("events.processing.tally", b'{"n": 2}'),
        Event("events.processing.tally", b'{"n": 2}'),  # same content, no id: same task
        Event("events.processing.tally", b"oops"),
        Event("events.nothing.here", b"{}"),
        Event("elsewhere", b"{}"),
    ]
    outcomes = dispatcher(app, redis_client).dispatch(events)
    assert [(o.action, o.kind, o.duplicate) for o in outcomes] == [
        (Action.ACK, "", False),
        (Action.ACK, "", True),
        (Action.DEAD, "bad_json", False),
        (Action.DEAD, "unknown_capability", False),
        (Action.DEAD, "unmapped_subject", False),
    ]
    assert queued(redis_client) == 1
