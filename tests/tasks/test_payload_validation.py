"""Payload schemas on the real fleet: a bad payload is refused before its handler runs, naming
every bad field, and the analysis engine's `validation` capability checks payloads by the cards."""

from __future__ import annotations

import pytest

from agents.errors import InvalidRequest
from tests.conftest import wait_for_history
from tests.engines import COUNTS_KEY

pytestmark = pytest.mark.servers

BAD_SERIES = {"data": [1, "x", None], "z_limit": 0}
BAD_SERIES_MESSAGE = (
    "payload invalid for task_type 'default' of engine 'analysis': "
    "data.1: Input should be a valid number, unable to parse string as a number; "
    "data.2: Input should be a valid number; "
    "z_limit: Input should be greater than 0"
)


def test_a_bad_payload_is_refused_naming_every_field_directly_and_routed(fleet: str, redis_client) -> None:
    from tasks import engine_task, route

    # Given the analysis engine (a batch engine) and the same bad payload, sent both ways
    direct = engine_task("analysis").delay({"payload": BAD_SERIES})
    routed = route.delay({"capability": "analysis", "payload": BAD_SERIES})
    # Then both are refused with one message naming every bad field
    for result in (direct, routed):
        with pytest.raises(InvalidRequest) as caught:
            result.get(timeout=20)
        assert str(caught.value) == BAD_SERIES_MESSAGE
    # And the history keeps the reason
    rows = wait_for_history([direct.id, routed.id])
    assert {row["error"] for row in rows.values()} == {f"InvalidRequest: {BAD_SERIES_MESSAGE}"}
    assert {row["engine"] for row in rows.values()} == {"analysis"}


def test_the_handler_never_runs_on_a_bad_payload(fleet: str, redis_client) -> None:
    from tasks import engine_task, route

    # The counter engine counts each run of its handler; it declares a schema for "strict" only.
    bad = route.delay({"capability": "counting", "task_type": "strict", "payload": {"count": -1}})
    with pytest.raises(
        InvalidRequest, match=r"'counter': count: Input should be greater than or equal to 0$"
    ):
        bad.get(timeout=20)
    good = engine_task("counter").delay({"task_type": "strict", "payload": {"count": 2}})
    # The handler saw the validated payload, its default filled in
    assert good.get(timeout=20) == {"task_type": "strict", "payload": {"count": 2, "label": "unlabelled"}}
    free = engine_task("counter").delay({"task_type": "other", "payload": {"count": -1}})
    assert free.get(timeout=20)["payload"] == {"count": -1}  # no schema for "other": taken as it is
    runs = redis_client.hgetall(COUNTS_KEY)
    assert bad.id.encode() not in runs
    assert (runs[good.id.encode()], runs[free.id.encode()]) == (b"1", b"1")


def test_validation_checks_a_payload_against_an_engines_card(fleet: str, redis_client) -> None:
    from tasks import engine_task, route

    bad = {"metrics": {"cpu": [40, "high"], "mem": []}, "thresholds": {"cpu": None}}
    verdict = route.delay(
        {"capability": "validation", "payload": {"engine": "performance", "payload": bad}}
    ).get(timeout=20)
    assert verdict == {
        "valid": False,
        "task_type": "default",
        "engine": "performance",
        "errors": [
            {"field": "metrics.cpu.1", "problem": "'high' is not of type 'number'"},
            {"field": "metrics.mem", "problem": "[] should be non-empty"},
            {"field": "thresholds.cpu", "problem": "None is not of type 'number'"},
        ],
    }
    good = {"metrics": {"cpu": [40, 95]}, "thresholds": {"cpu": 90}}
    request = {"capability": "validation", "payload": {"engine": "performance", "payload": good}}
    assert engine_task("analysis").delay(request).get(timeout=20) == {
        "valid": True, "task_type": "default", "engine": "performance", "errors": []
    }  # fmt: skip
    # Without an engine, the one engine declaring the task_type is found.
    strict = {"capability": "validation", "payload": {"task_type": "strict", "payload": {"count": "many"}}}
    assert route.delay(strict).get(timeout=20)["errors"] == [
        {"field": "count", "problem": "'many' is not of type 'integer'"}
    ]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"engine": "performance"}, r"'analysis': payload: Field required$"),
        ({"payload": {}}, r"^task_type 'default' is declared by several engines \(analysis, optimization, "),
        (
            {"schema": {"type": "nonsense"}, "payload": {}},
            r"^schema is not a valid JSON Schema \(Draft 2020-12\)",
        ),
    ],
)
def test_a_malformed_validation_request_is_refused(fleet: str, redis_client, payload, message) -> None:
    from tasks import route

    with pytest.raises(InvalidRequest, match=message):
        route.delay({"capability": "validation", "payload": payload}).get(timeout=20)
