"""`problem_of`: each task message shape Celery's worker would choke on is named; a good one and the
ones Celery refuses by itself pass. Real kombu messages (the reliable channel's Message class on
kombu's in-memory transport); the live refusals are in test_untrusted_content.py and tests/fuzz."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from kombu import Connection

from agents.names import engine_task_name
from tasks.refusals import BAD_BODY, BAD_HEADER, MAX_HEADER_DEPTH, TOO_LARGE, problem_of
from tasks.transport.envelope import Malformed, Message

LIMIT = 10_000
EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
HEADERS: dict[str, Any] = {
    "lang": "py", "task": engine_task_name("counter"), "id": "t-1", "shadow": None, "eta": None,
    "expires": None, "group": None, "group_index": None, "retries": 0, "timelimit": [None, None],
    "root_id": "t-1", "parent_id": None, "argsrepr": "()", "kwargsrepr": "{}", "stamped_headers": None,
    "stamps": {},
}  # fmt: skip


@pytest.fixture(scope="module")
def channel() -> Iterator[Any]:
    with Connection("memory://") as connection:
        yield connection.default_channel


def build(channel: Any, body: Any = None, content_type: str = "application/json", **headers: Any) -> Message:
    """A message as the reliable channel builds it from Redis, with `headers` changed."""
    text = json.dumps([[{"payload": {}}], {}, EMBED] if body is None else body).encode()
    payload = {
        "body": base64.b64encode(text).decode(), "content-encoding": "utf-8", "content-type": content_type,
        "headers": HEADERS | headers,
        "properties": {"delivery_tag": "tag", "body_encoding": "base64", "delivery_info": {}},
    }  # fmt: skip
    return Message(payload, channel=channel)


def test_a_good_message_passes(channel: Any) -> None:
    assert problem_of(build(channel), LIMIT) is None
    assert problem_of(build(channel, eta="2030-01-01T00:00:00+00:00", timelimit=[10, 20.5]), LIMIT) is None


@pytest.mark.parametrize(
    ("headers", "said"),
    [
        ({"task": ["agents.route"]}, "headers.task is list, not a string"),
        ({"id": ["x"]}, "headers.id is ['x'], not a non-empty string"),
        ({"id": None}, "headers.id is None, not a non-empty string"),
        ({"id": ""}, "headers.id is '', not a non-empty string"),
        ({"timelimit": 5}, "headers.timelimit is 5, not [soft, hard] seconds or nulls"),
        ({"timelimit": [1, 2, 3]}, "headers.timelimit is [1, 2, 3], not [soft, hard] seconds or nulls"),
        ({"timelimit": ["a", None]}, "headers.timelimit is ['a', None], not [soft, hard] seconds or nulls"),
        ({"expires": ""}, "headers.expires is '', not an ISO 8601 time"),
        ({"expires": {}}, "headers.expires is {}, not an ISO 8601 time"),
        ({"eta": "tomorrow"}, "headers.eta is 'tomorrow', not an ISO 8601 time"),
        ({"stamped_headers": [{}]}, "headers.stamped_headers is [{}], not a list of strings or null"),
        ({"stamps": [1]}, "headers.stamps is list, not an object or null"),
        ({"x": json.loads("[" * (MAX_HEADER_DEPTH + 1) + "]" * (MAX_HEADER_DEPTH + 1))},
         f"headers nested deeper than {MAX_HEADER_DEPTH} levels"),
    ],
)  # fmt: skip
def test_a_bad_header_is_named(channel: Any, headers: dict[str, Any], said: str) -> None:
    assert problem_of(build(channel, **headers), LIMIT) == (BAD_HEADER, said)


def test_a_missing_id_is_named(channel: Any) -> None:
    message = build(channel)
    del message.headers["id"]
    assert problem_of(message, LIMIT) == (BAD_HEADER, "headers.id is missing")


@pytest.mark.parametrize("body", [{}, [1, 2], [[], {}, {}, {}], [{}, {}, {}], [[], [], {}], [[], {}, 5]])
def test_a_body_that_is_not_args_kwargs_embed_is_named(channel: Any, body: Any) -> None:
    assert problem_of(build(channel, body=body), LIMIT) == (
        BAD_BODY,
        "body is not [args, kwargs, embed] (content-type 'application/json')",
    )


def test_a_raw_content_type_gives_no_triple(channel: Any) -> None:
    assert problem_of(build(channel, content_type="application/data"), LIMIT)[0] == BAD_BODY  # type: ignore[index]


def test_a_body_over_the_limit_is_named_with_its_size(channel: Any) -> None:
    message = build(channel, body=[[{"payload": {"pad": "x" * LIMIT}}], {}, EMBED])
    size = len(message.body)
    assert problem_of(message, LIMIT) == (
        TOO_LARGE,
        f"body is {size} bytes, over the limit of {LIMIT} bytes (MAX_PAYLOAD_BYTES)",
    )


def test_what_celery_refuses_itself_passes(channel: Any) -> None:
    assert problem_of(build(channel, content_type="application/x-python-serialize"), LIMIT) is None
    no_task = build(channel)
    del no_task.headers["task"]
    assert problem_of(no_task, LIMIT) is None  # Celery: not a task message


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda p: p.update(headers=["x"]), "headers is an array, not an object"),
        (lambda p: p["properties"].update(delivery_info=[1]), "properties.delivery_info is not an object"),
        (lambda p: p.update(body="!!!notbase64="), "body does not decode with body_encoding 'base64'"),
        (lambda p: p["properties"].update(body_encoding="rot13"), "body does not decode with body_encoding"),
        (lambda p: p.update({"content-encoding": 5}), "content-encoding is a number, not text"),
    ],
)
def test_an_envelope_kombu_cannot_read_is_malformed(channel: Any, change: Any, said: str) -> None:
    payload = {
        "body": base64.b64encode(b"[[], {}, {}]").decode(), "content-encoding": "utf-8",
        "content-type": "application/json", "headers": dict(HEADERS),
        "properties": {"delivery_tag": "tag", "body_encoding": "base64", "delivery_info": {}},
    }  # fmt: skip
    change(payload)
    with pytest.raises(Malformed, match=said):
        Message(payload, channel=channel)
