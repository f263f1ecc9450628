"""Shared by the fuzz tests: the sample size, the count of inputs sent, and raw broker messages.

A raw message is what kombu's Redis transport stores in a queue list: a JSON envelope whose body
is a base64 Celery protocol 2 body. Strategies draw templates; `Input.realise` fills in a fresh
task id and delivery tag, so no id repeats across examples.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from agents.names import ROUTE_TASK, ROUTER_QUEUE, engine_task_name
from agents.settings import get_settings

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
MAX_PAYLOAD_BYTES = get_settings().max_payload_bytes  # the session's workers' limit (the default)
PURE = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # every run draws afresh: replayed examples would skew the input counts
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
# Against real servers: no shrinking (each try costs seconds, a dead worker minutes); the failing
# batch is printed whole and the worker logs say which input did it. pytest-timeout scales too.
FUZZ = settings(PURE, phases=[Phase.explicit, Phase.generate], report_multiple_bugs=False)
LIVE_TIMEOUT = pytest.mark.timeout(120 + 3 * EXAMPLES)

# What a raw message must come to: moved aside, refused unread, run, or anything but stuck.
MALFORMED, REFUSED, VALID, ANY = "malformed", "refused", "valid", "any"
ID, TAG, PAD = "@ID@", "@TAG@", "@PAD@"
EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
ROUTER, ENGINE = ROUTER_QUEUE, "counter"  # the batch path, and Celery's own (per-request) strategy


class _Summary:
    """A plugin registered on first use: prints the modules' input counts after the test summary,
    and at the session's end the total and the crash count (also appended to FUZZ_REPORT)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.total = 0
        self.crashes = 0

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # A crash: a failed fuzz test (a worker down, a message lost, stuck or run twice, an
        # exception escaping where a named refusal was due). `make fuzz` exits non-zero on any.
        # Failures elsewhere in the session are not the fuzzer's.
        if report.failed and report.nodeid.startswith("tests/fuzz/"):
            self.crashes += 1

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        total, crashes = self.total, self.crashes
        line = f"fuzz total: {total} inputs at FUZZ_EXAMPLES={EXAMPLES}, {crashes} crashes (failed tests)"
        _append(line)
        self.lines.append(line)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        for line in self.lines:
            terminalreporter.write_line(line)


def _append(line: str) -> None:
    if path := os.environ.get("FUZZ_REPORT"):
        with open(path, "a", encoding="utf-8") as report:
            report.write(line + "\n")


_SUMMARY = pytest.StashKey[_Summary]()


def reporting(request: pytest.FixtureRequest) -> Iterator[dict[str, int]]:
    """A module's input counts by test; at its end appended to FUZZ_REPORT and to the summary."""
    sent: dict[str, int] = {}
    yield sent
    line = f"fuzz {request.module.__name__}: {sum(sent.values())} inputs at FUZZ_EXAMPLES={EXAMPLES} {sent}"
    _append(line)
    summary = _summary(request.config)
    summary.lines.append(line)
    summary.total += sum(sent.values())


def _summary(config: pytest.Config) -> _Summary:
    if _SUMMARY not in config.stash:
        config.stash[_SUMMARY] = _Summary()
        config.pluginmanager.register(config.stash[_SUMMARY], "fuzz-summary")
    return config.stash[_SUMMARY]


@dataclass(frozen=True)
class Input:
    """One raw message (a template until realised) and what it must come to."""

    raw: bytes
    kind: str
    expect: str
    pad: int = 0  # PAD becomes this many bytes (huge bodies are drawn as a size, built when sent)
    task_id: str = ""
    tag: str = ""

    def realise(self) -> Input:
        task_id, tag = str(uuid.uuid4()), str(uuid.uuid4())
        raw = self.raw.replace(ID.encode(), task_id.encode()).replace(TAG.encode(), tag.encode())
        expect = self.expect
        if self.pad and raw.startswith(b"{"):  # an envelope: PAD is inside its base64 body
            message = json.loads(raw)
            body = base64.b64decode(message["body"]).replace(PAD.encode(), b"x" * self.pad)
            message["body"] = base64.b64encode(body).decode()
            raw = encode(message)
            if expect == VALID and len(body) > MAX_PAYLOAD_BYTES:  # a worker refuses it unrun
                expect = REFUSED
        raw = raw.replace(PAD.encode(), b"x" * self.pad)
        task_id = task_id if ID.encode() in self.raw else ""
        return replace(self, raw=raw, expect=expect, task_id=task_id, tag=tag)


def request_args(queue: str, payload: Any) -> list[Any]:
    """The task's args: a routed request on the router queue, an engine request elsewhere."""
    return [{"capability": "counting", "payload": payload}] if queue == ROUTER else [{"payload": payload}]


def envelope(queue: str, args: list[Any] | None = None) -> dict[str, Any]:
    """kombu's stored form of a Celery protocol 2 task message, as `send_task` writes it."""
    body = json.dumps([request_args(queue, {}) if args is None else args, {}, EMBED]).encode()
    task = ROUTE_TASK if queue == ROUTER else engine_task_name(queue)
    headers: dict[str, Any] = {
        "lang": "py", "task": task, "id": ID, "shadow": None, "eta": None, "expires": None, "group": None,
        "group_index": None, "retries": 0, "timelimit": [None, None], "root_id": ID, "parent_id": None,
        "argsrepr": "()", "kwargsrepr": "{}", "origin": "fuzz", "ignore_result": False,
        "replaced_task_nesting": 0, "stamped_headers": None, "stamps": {},
    }  # fmt: skip
    properties = {
        "correlation_id": ID, "reply_to": "fuzz", "delivery_mode": 2, "priority": 0,
        "body_encoding": "base64", "delivery_info": {"exchange": "", "routing_key": queue},
        "delivery_tag": TAG,
    }  # fmt: skip
    return {
        "body": base64.b64encode(body).decode(), "content-encoding": "utf-8",
        "content-type": "application/json", "headers": headers, "properties": properties,
    }  # fmt: skip


def encode(message: Any) -> bytes:
    return json.dumps(message).encode()


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def json_of(floats: st.SearchStrategy[float], text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    """JSON values (nested up to ten leaves) with these floats and this text for strings and keys."""
    leaves = st.none() | st.booleans() | st.integers(-(2**31), 2**31 - 1) | floats | text
    return st.recursive(
        leaves, lambda c: st.lists(c, max_size=4) | st.dictionaries(text, c, max_size=4), max_leaves=10
    )


FINITE = st.floats(allow_nan=False, allow_infinity=False)
# Text PostgreSQL stores (no NUL, no lone surrogate) and numbers jsonb takes (no NaN, no Infinity).
# The history writer now makes the rest storable (db/history.py), so valid requests get it too.
SAFE_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)
SAFE_JSON = json_of(FINITE, SAFE_TEXT)
ANY_JSON = json_of(st.floats(), st.text(max_size=30))
SCALARS = st.none() | st.booleans() | st.integers(-(2**31), 2**31 - 1) | st.floats() | st.text(max_size=30)
DISALLOWED = ["application/x-python-serialize", "application/x-yaml", "text/plain", "application/x-msgpack",
    "application/octet-stream", "application/json; charset=utf-8"]  # fmt: skip
# Header fields given any JSON value: every one a message can carry, on both paths (the poison that
# exploration found among them, each refused now by name, is pinned in test_broker_messages).
HEADERS = ["lang", "shadow", "eta", "expires", "group", "group_index", "retries", "timelimit", "root_id",
    "parent_id", "argsrepr", "kwargsrepr", "origin", "ignore_result", "replaced_task_nesting",
    "stamped_headers", "stamps", "redelivered", "callbacks", "errbacks", "chain", "chord",
    "x-fuzz"]  # fmt: skip
PROPERTIES = ["correlation_id", "reply_to", "delivery_mode", "priority", "x-fuzz"]


DROP, MARK = object(), "@MARK@"  # field removed; a placeholder replaced by raw bytes after encoding


def edited(queue: str, where: str, name: str, value: Any, raw: bytes = b"") -> bytes:
    """The queue's envelope with one field set or dropped; `raw` replaces a MARK value as is."""
    message = envelope(queue)
    info = message["properties"]["delivery_info"]
    target = {"": message, "headers": message["headers"], "properties": message["properties"], "info": info}
    if value is DROP:
        del target[where][name]
    else:
        target[where][name] = value
    return encode(message).replace(f'"{MARK}"'.encode(), raw)


def field(queue: str, where: str, names: list[str], values: st.SearchStrategy[Any], expect: str,
    kind: str = "") -> st.SearchStrategy[Input]:  # fmt: skip
    """Inputs whose field `where.name` (one of `names`) holds one of `values`."""
    return st.builds(
        lambda name, value: Input(edited(queue, where, name, value), kind or f"{where}:{name}", expect),
        st.sampled_from(names), values,
    )  # fmt: skip


def not_envelopes(queue: str) -> st.SearchStrategy[Input]:
    """Raw messages FETCH must move to the malformed list: no kombu envelope in them."""
    whole = encode(envelope(queue))
    no_tag: st.SearchStrategy[Any] = st.sampled_from([None, 7, 1.5, True, [], {}, ["x"]])
    no_info = st.sampled_from([None, "x", 3, False, [1], ["x", {}]])
    # Headers kombu's restore could not write `redelivered` into.
    no_headers: st.SearchStrategy[Any] = st.sampled_from([None, "x", 3, False, ["x"], [{}]])
    too_deep = st.integers(1001, 4000).map(lambda d: nested(d).encode())  # Redis's cjson stops at 1000
    return st.one_of(
        st.binary(max_size=300).map(lambda b: Input(b, "binary", MALFORMED)),
        st.text(max_size=100).map(lambda t: Input(t.encode(), "text", MALFORMED)),
        st.integers(0, len(whole) - 1).map(lambda cut: Input(whole[:cut], "truncated", MALFORMED)),
        ANY_JSON.filter(lambda v: not isinstance(v, dict)).map(lambda v: Input(encode(v), "json", MALFORMED)),
        st.just(Input(encode({"body": "x", "headers": {}}), "no_properties", MALFORMED)),
        field(queue, "properties", ["delivery_tag"], no_tag, MALFORMED),
        field(queue, "properties", ["delivery_info"], no_info, MALFORMED),
        field(queue, "", ["headers"], no_headers, MALFORMED),
        too_deep.map(lambda raw: Input(edited(queue, "headers", "x-fuzz", MARK, raw), "too_deep", MALFORMED)),
    )


def envelopes(queue: str) -> st.SearchStrategy[Input]:
    """Kombu envelopes with something wrong inside, and what each must come to."""
    missing = ["task", "id"]
    undecodable = st.binary(max_size=50).map(lambda b: base64.b64encode(b"\xff" + b).decode())
    shapes = SAFE_JSON.map(lambda v: base64.b64encode(encode(v)).decode())
    # Not JSON (it runs); '' and the trusted raw types give a body that is no [args, kwargs, embed].
    types = st.sampled_from(DISALLOWED) | st.text(max_size=30).filter(lambda t: t != "application/json")
    # Ids of every type (a worker refuses all but text), over 200 characters or with a NUL (the
    # history writer sets such a record aside and goes on).
    ids = SCALARS | st.lists(SCALARS, max_size=2) | st.text(min_size=201, max_size=260) | st.just("a\x00b")
    names = SCALARS.filter(
        lambda t: not (isinstance(t, str) and t.startswith(("agents.", "tests.", "celery.")))
    )
    shallow = st.integers(1, 300).map(lambda d: nested(d).encode())
    # Any bytes in a string: not UTF-8, raw control characters (cjson takes them, Python's json not).
    raw_bytes = st.binary(min_size=1, max_size=8).filter(lambda b: b'"' not in b and b"\\" not in b)
    non_utf8 = raw_bytes.map(lambda b: b'"' + b + b'"')
    info = ["exchange", "routing_key", "redelivered"]
    choices = [
        field(queue, "headers", HEADERS, ANY_JSON, ANY),
        field(queue, "headers", missing, st.just(DROP), REFUSED, "missing_header"),
        field(queue, "headers", ["task"], names, REFUSED, "unknown_task"),
        field(queue, "headers", ["id"], ids, ANY),
        field(queue, "properties", PROPERTIES, ANY_JSON, ANY),
        field(queue, "info", info, ANY_JSON, ANY),
        field(queue, "", ["content-type"], types, REFUSED),
        field(queue, "", ["content-encoding"], ANY_JSON, ANY),
        field(queue, "", ["body"], shapes, ANY, "body_shape"),
        field(queue, "", ["headers"], st.just(DROP), ANY, "no_headers"),
        field(queue, "", ["body"], undecodable, REFUSED, "undecodable_body"),
        shallow.map(lambda raw: Input(edited(queue, "headers", "x-fuzz", MARK, raw), "nested", ANY)),
        non_utf8.map(lambda raw: Input(edited(queue, "headers", "origin", MARK, raw), "non_utf8", ANY)),
    ]
    return st.one_of(choices)


def valid(queue: str) -> st.SearchStrategy[Input]:
    """A request that must run once, with any payload PostgreSQL can store."""
    payloads = st.dictionaries(st.text(max_size=20), ANY_JSON, max_size=5)
    return payloads.map(lambda p: Input(encode(envelope(queue, request_args(queue, p))), "valid", VALID))


def huge(queue: str) -> st.SearchStrategy[list[Input]]:
    """One batch in ten also carries a 0.5-2 MB message: garbage, or a valid request's payload."""
    garbage = Input(b"\xff" + PAD.encode(), "huge_garbage", MALFORMED)
    request = Input(encode(envelope(queue, request_args(queue, {"pad": PAD}))), "huge_valid", VALID)
    sized = st.builds(lambda i, n: [replace(i, pad=n)], st.sampled_from([garbage, request]),
        st.integers(500_000, 2_000_000))  # fmt: skip
    return st.sampled_from([False] * 9 + [True]).flatmap(lambda big: sized if big else st.just([]))


def batches(queue: str) -> st.SearchStrategy[list[Input]]:
    """20-60 raw messages in random order, 1-4 of them valid requests."""
    garbage = st.lists(st.one_of(not_envelopes(queue), envelopes(queue)), min_size=16, max_size=55)
    parts = st.tuples(garbage, st.lists(valid(queue), min_size=1, max_size=4), huge(queue))
    return parts.map(lambda p: p[0] + p[1] + p[2]).flatmap(st.permutations)
