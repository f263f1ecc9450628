"""Bad NATS events, thrown at the bridge's pure parsing and at a real `agents bridge`.

- Pure: whatever subject, headers and body an event carries, the dispatcher's steps (subject
  map, `raw_request`, `parse_request`) give a request, or a BadEvent / InvalidRequest whose message
  names the problem; never another exception. Its dead letter is JSON that keeps the event.
- Live: one bridge for the module; each example JetStream-publishes a batch of garbage events and
  one valid event. Every garbage event is dead-lettered with the kind the pure steps predict, the
  valid one runs once and gets its final history row, and the bridge stays up.

JSON that Python's json cannot decode (nesting deeper than the recursion limit, an integer of
more than 4300 digits) is a BadEvent('bad_json') like any other bad JSON, pure and live (it once
escaped `raw_request` and made its whole batch go round forever).
"""

from __future__ import annotations

import asyncio
import json
import string
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.bridge.events import BadEvent, Event, dead_letter_body, raw_request, task_id_for
from agents.bridge.mapping import Route, SubjectMap
from agents.errors import InvalidRequest
from agents.execution import parse_request
from agents.models import TaskRequest
from tests.fuzz.examples import ANY_JSON, FUZZ, LIVE_TIMEOUT, PURE, SAFE_JSON, SAFE_TEXT, reporting

SUBJECTS = SubjectMap("events", [])  # the default map (events.<capability>[.<task_type>]), no engines
TOKEN = st.text(string.ascii_lowercase + string.digits + "_-", min_size=1, max_size=12)
LONG_TOKEN = st.text(string.ascii_lowercase, min_size=65, max_size=90)  # over TaskRequest's 64
# NATS strips header values: none starts or ends with a space, so the bridge sees what was sent.
HEADER_TEXT = st.text(string.ascii_letters + string.digits + " -_.:/", max_size=250).map(str.strip)
HEADER_NAMES = ["Nats-Msg-Id", "Reply-To", "Priority", "Correlation-Id", "Trace-Id", "X-Other"]
# How each refusal's message starts: it names the problem.
NAMED: dict[str, str | tuple[str, ...]] = {
    "unmapped_subject": "no capability is mapped to ",
    "bad_json": "body is not JSON: ",
    "invalid_request": ("body must be a JSON object, got ", "invalid request: "),
}


@pytest.fixture(scope="module")
def sent(request: pytest.FixtureRequest) -> Iterator[dict[str, int]]:
    yield from reporting(request)


def outcome(event: Event) -> TaskRequest | tuple[str, str]:
    """What the dispatcher makes of an event before routing: a request, or (kind, message)."""
    route: Route | None = SUBJECTS.match(event.subject)
    if route is None:  # the dispatcher's own words
        return "unmapped_subject", f"no capability is mapped to {event.subject!r}"
    try:
        return parse_request(raw_request(event, route), task_id=task_id_for(event))
    except BadEvent as exc:
        return exc.kind, str(exc)
    except InvalidRequest as exc:
        return exc.kind, str(exc)


def json_bodies() -> st.SearchStrategy[bytes]:
    """Bodies of every shape: bytes, JSON of any type, truncated objects, other encodings."""
    objects = st.dictionaries(st.text(max_size=10), ANY_JSON, max_size=5).map(json.dumps)
    return st.one_of(
        st.binary(max_size=200),
        ANY_JSON.map(lambda v: json.dumps(v).encode()),
        objects.map(str.encode),
        st.builds(lambda text, cut: text.encode()[:cut], objects, st.integers(0, 40)),
        st.builds(lambda text, codec: text.encode(codec), objects, st.sampled_from(["utf-16", "utf-32"])),
    )


def events() -> st.SearchStrategy[Event]:
    """Any subject (mapped or not, tokens over 64 characters), body and headers."""
    subjects = st.lists(TOKEN | LONG_TOKEN, min_size=1, max_size=4).map(".".join) | st.lists(
        TOKEN, max_size=3).map(lambda t: ".".join(["events", *t]))  # fmt: skip
    headers = st.dictionaries(st.sampled_from(HEADER_NAMES) | st.text(max_size=10), st.text(max_size=250))
    return st.builds(Event, subjects, json_bodies(), headers, st.integers(1, 5))


@LIVE_TIMEOUT  # scaled with the sample: at FUZZ_EXAMPLES=250 on a busy machine it passed 120 s
@PURE
@given(batch=st.lists(events(), min_size=20, max_size=60))
def test_an_event_becomes_a_request_or_a_named_refusal(sent: dict[str, int], batch: list[Event]) -> None:
    sent["parsed"] = sent.get("parsed", 0) + len(batch)
    for event in batch:
        task_id = task_id_for(event)
        assert task_id == task_id_for(Event(event.subject, event.data, event.headers)), "redelivery, new id"
        result = outcome(event)
        if isinstance(result, TaskRequest):
            assert result.task_id == task_id and isinstance(result.payload, dict)
            continue
        kind, message = result
        assert kind in NAMED, f"undocumented kind {kind}"
        assert message.startswith(NAMED[kind]), f"{kind}: {message!r} does not name the problem"
        letter = json.loads(dead_letter_body(event, kind, message))
        assert letter["subject"] == event.subject and letter["headers"] == event.headers
        assert letter["error"] == {"kind": kind, "message": message}


# Before its fix, json.loads's RecursionError / ValueError (an int over 4300 digits) escaped
# raw_request instead of BadEvent('bad_json'): live, the batch failed and the event was redelivered
# forever with the valid events fetched with it.
@pytest.mark.parametrize("data", [b"[" * 100_000, b'{"n": ' + b"1" * 5000 + b"}"], ids=["nested", "digits"])
def test_json_python_cannot_decode_is_a_bad_event(data: bytes) -> None:
    with pytest.raises(BadEvent) as refused:
        raw_request(Event("events.counting.tally", data), Route("counting", "tally"))
    assert refused.value.kind == "bad_json"


# -- live: a real bridge -----------------------------------------------------------------------


def garbage() -> st.SearchStrategy[tuple[str, bytes, dict[str, str]]]:
    """Events that can never become a task, on subjects the bridge's stream captures."""
    tally = "events.counting.tally"
    not_json = st.binary(max_size=60).map(lambda b: b"{\xff" + b)  # never decodes
    # JSON Python's json refuses: deeper than the recursion limit, an integer over 4300 digits.
    python_refuses = st.integers(5000, 20_000).map(lambda n: b"[" * n + b"]" * n) | st.integers(
        4301, 9000).map(lambda n: b'{"n": ' + b"7" * n + b"}")  # fmt: skip
    not_object = ANY_JSON.filter(lambda v: not isinstance(v, dict)).map(lambda v: json.dumps(v).encode())
    body = st.dictionaries(SAFE_TEXT, SAFE_JSON, max_size=4).map(lambda v: json.dumps(v).encode())
    priority = HEADER_TEXT.filter(lambda p: isinstance(outcome(Event(tally, b"{}", {"Priority": p})), tuple))
    subject = st.one_of(
        st.lists(TOKEN, min_size=3, max_size=5).map(lambda t: ".".join(["events", *t])),  # unmapped
        TOKEN.map(lambda t: f"events.nosuch{t}.x"),  # no engine offers it
        LONG_TOKEN.map(lambda t: f"events.counting.{t}"),  # task_type too long
        LONG_TOKEN.map(lambda t: f"events.{t}"),  # capability too long
    )
    return st.one_of(
        st.tuples(st.just(tally), not_json | not_object | python_refuses, st.just({})),
        st.tuples(st.just(tally), body, priority.map(lambda p: {"Priority": p})),
        st.tuples(st.just(tally), body, st.just({"Correlation-Id": "c" * 201})),
        st.tuples(subject, body, st.dictionaries(st.just("X-Other"), HEADER_TEXT)),
    )


async def dead_letters(after: int, ids: set[str], timeout: float = 30.0) -> tuple[int, dict[str, Any]]:
    """The dead letters stored after stream sequence `after`, by Nats-Msg-Id, once every id in
    `ids` has one; and the last sequence read."""
    from agents.settings import get_settings
    from tests.agents.bridge.conftest import connected

    stream = get_settings().bridge_dlq_stream
    letters: dict[str, Any] = {}
    async with connected() as nc:
        js = nc.jetstream()
        deadline = time.monotonic() + timeout
        while not ids <= letters.keys():
            assert time.monotonic() < deadline, f"not dead-lettered: {sorted(ids - letters.keys())}"
            for seq in range(after + 1, (await js.stream_info(stream)).state.last_seq + 1):
                letter = json.loads((await js.get_msg(stream, seq)).data or b"{}")
                letters[letter.get("headers", {}).get("Nats-Msg-Id", "")] = letter
                after = seq
            await asyncio.sleep(0.05)
    return after, letters


@dataclass
class LiveBridge:
    process: Any
    dlq_seq: int = 0  # the last dead letter seen


@pytest.fixture(scope="module")
def live_bridge(nats_server: Any, fleet: str) -> Iterator[LiveBridge]:
    """Fresh streams and one `agents bridge` for the module; it must stop cleanly."""
    from tests.agents.bridge.conftest import BridgeRunner, prepare_streams
    from tests.conftest import SESSION_HOME

    prepare_streams()
    runner = BridgeRunner(SESSION_HOME / "fuzz-bridge.log")
    bridge = LiveBridge(runner.start())
    yield bridge
    assert runner.stop(bridge.process) == 0, f"the bridge did not stop cleanly; see {runner.log}"


@pytest.mark.servers
@LIVE_TIMEOUT
@FUZZ
@given(data=st.data())
def test_garbage_events_are_dead_lettered_and_the_bridge_goes_on(
    live_bridge: LiveBridge, redis_client: Any, sent: dict[str, int], data: st.DataObject
) -> None:
    from tests.agents.bridge.conftest import counts, publish, wait_until
    from tests.conftest import wait_for_history

    bad = data.draw(st.lists(garbage(), min_size=20, max_size=60), label="garbage")
    bad = [(s, d, h | {"Nats-Msg-Id": str(uuid.uuid4())}) for s, d, h in bad]  # no JetStream dedup
    body = json.dumps({"n": str(uuid.uuid4())}).encode()
    valid: tuple[str, bytes, dict[str, str]] = ("events.counting.tally", body, {})
    position = data.draw(st.integers(0, len(bad)), label="valid at")
    publish([*bad[:position], valid, *bad[position:]])
    sent["events"] = sent.get("events", 0) + len(bad) + 1

    # Each garbage event's dead letter has the kind the pure steps give (routing: no such engine).
    ids = {h["Nats-Msg-Id"] for _, _, h in bad}
    live_bridge.dlq_seq, letters = asyncio.run(dead_letters(live_bridge.dlq_seq, ids))
    for subject, body, headers in bad:
        result = outcome(Event(subject, body, headers))
        kind = result[0] if isinstance(result, tuple) else "unknown_capability"
        assert letters[headers["Nats-Msg-Id"]]["error"]["kind"] == kind, (subject, body, headers)
    task_id = task_id_for(Event(*valid))
    wait_until(lambda: counts(redis_client).get(task_id) == 1, what="the valid event ran")
    wait_for_history([task_id], {"success"})
    assert live_bridge.process.poll() is None, "the bridge exited"
