"""MAX_PAYLOAD_BYTES at the bridge: an event whose body is larger is dead-lettered as `too_large`
(acked, recorded, counted like any bad event, never redelivered) and later events still run."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from agents.bridge.events import TOO_LARGE_KEPT_BYTES, BadEvent, Event, check_size, task_id_for
from tests.agents.bridge.conftest import BridgeRunner, counts, dead_letters, drained, publish, wait_until
from tests.conftest import wait_for_history

pytestmark = pytest.mark.servers

# NATS's own max_payload is 1 MB, so the bridge under test gets a smaller limit than the default.
LIMIT = 4096
SUBJECT = "events.counting.tally"


def test_check_size_names_the_size_and_the_limit() -> None:
    check_size(Event(SUBJECT, b"x" * LIMIT), LIMIT)  # at the limit: taken
    with pytest.raises(BadEvent) as refused:
        check_size(Event(SUBJECT, b"x" * (LIMIT + 1)), LIMIT)
    assert refused.value.kind == "too_large"
    assert (
        str(refused.value)
        == f"body is {LIMIT + 1} bytes, over the limit of {LIMIT} bytes (MAX_PAYLOAD_BYTES)"
    )


def test_an_event_over_the_limit_is_dead_lettered_and_later_events_run(
    bridge: BridgeRunner, redis_client: Any
) -> None:
    def event(body: dict[str, Any]) -> tuple[str, bytes, dict[str, str]]:
        return SUBJECT, json.dumps(body).encode(), {"Nats-Msg-Id": str(uuid.uuid4())}

    before = [event({"n": n}) for n in range(3)]
    big = event({"pad": "x" * (3 * LIMIT)})
    after = [event({"n": n}) for n in range(3, 6)]
    dead_before = int(redis_client.hget("agents:counters", "dead_letter:too_large") or 0)
    publish([*before, big, *after])

    bridge.start(MAX_PAYLOAD_BYTES=str(LIMIT))

    valid_ids = {task_id_for(Event(s, d, h)) for s, d, h in [*before, *after]}
    wait_until(lambda: valid_ids <= set(counts(redis_client)), what="the events around it ran")
    wait_until(lambda: len(dead_letters()) == 1, what="the oversized event dead-lettered")
    letter = dead_letters()[0]
    size = len(big[1])
    assert letter["error"] == {
        "kind": "too_large",
        "message": f"body is {size} bytes, over the limit of {LIMIT} bytes (MAX_PAYLOAD_BYTES)",
    }
    assert letter["data_bytes"] == size and len(letter["data"]) == TOO_LARGE_KEPT_BYTES
    wait_until(drained, what="every event acked (the oversized one is not redelivered)")
    big_id = task_id_for(Event(*big))
    assert big_id not in counts(redis_client)
    row = wait_for_history([big_id], {"rejected"})[big_id]
    assert row["error"].startswith("too_large: body is ")
    assert int(redis_client.hget("agents:counters", "dead_letter:too_large")) == dead_before + 1
