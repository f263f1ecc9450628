"""Task ids, requests, backoff and dead-letter bodies of events (no servers)."""

from __future__ import annotations

import json
import uuid

import pytest

from agents.bridge.events import BadEvent, Event, dead_letter_body, nak_delay, raw_request, task_id_for
from agents.bridge.mapping import Route


def test_task_id_comes_from_the_message_id_else_from_the_content() -> None:
    first = Event("events.a.b", b'{"x": 1}', {"Nats-Msg-Id": "m-1"})
    again = Event("events.a.b", b'{"x": 2}', {"Nats-Msg-Id": "m-1"}, num_delivered=3)
    other = Event("events.a.b", b'{"x": 1}', {"Nats-Msg-Id": "m-2"})
    assert task_id_for(first) == task_id_for(again) != task_id_for(other)
    assert uuid.UUID(task_id_for(first)).version == 5
    plain = Event("events.a.b", b'{"x": 1}')
    assert task_id_for(plain) == task_id_for(Event("events.a.b", b'{"x": 1}', num_delivered=2))
    assert task_id_for(plain) != task_id_for(Event("events.a.c", b'{"x": 1}'))
    assert task_id_for(plain) != task_id_for(Event("events.a.b", b'{"x": 3}'))
    assert task_id_for(plain) != task_id_for(Event("events.a.b", b'{"x": 1}', {"Priority": "high"}))


def test_raw_request_uses_route_body_and_headers() -> None:
    event = Event("s", b'{"data": [1]}', {"Priority": "high", "Correlation-Id": "c-1"})
    raw = raw_request(event, Route("analysis", "report"))
    assert raw == {
        "capability": "analysis",
        "task_type": "report",
        "payload": {"data": [1]},
        "priority": "high",
        "correlation_id": "c-1",
    }
    assert raw_request(Event("s", b""), Route("a", "b"))["payload"] == {}


@pytest.mark.parametrize(
    ("data", "kind"), [(b"{not json", "bad_json"), (b"\xff\xfe", "bad_json"), (b"[1]", "invalid_request")]
)
def test_bodies_that_cannot_be_requests(data: bytes, kind: str) -> None:
    with pytest.raises(BadEvent) as caught:
        raw_request(Event("s", data), Route("a", "b"))
    assert caught.value.kind == kind


def test_nak_delay_doubles_up_to_the_cap() -> None:
    assert [nak_delay(n, 0.5, 3.0) for n in (1, 2, 3, 4, 5, 100)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_dead_letter_body_keeps_what_is_needed_to_replay() -> None:
    event = Event("events.x.y", b"\xffbad", {"Nats-Msg-Id": "m"}, num_delivered=2)
    body = json.loads(dead_letter_body(event, "bad_json", "body is not JSON"))
    assert body == {
        "subject": "events.x.y",
        "headers": {"Nats-Msg-Id": "m"},
        "data": "\ufffdbad",
        "error": {"kind": "bad_json", "message": "body is not JSON"},
        "num_delivered": 2,
    }
