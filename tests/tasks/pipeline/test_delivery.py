"""The Delivery both paths build from Celery's fields: pure, no servers."""

from __future__ import annotations

from tasks.pipeline.delivery import Delivery, delivery_from_fields


def delivery(**fields: object) -> Delivery:
    return delivery_from_fields(
        "agents.engine.x", {"id": "t1", **fields}, {"routing_key": "x", "priority": 6}
    )


def test_a_chords_first_part_keeps_its_group_index_zero() -> None:
    assert delivery(group="g", group_index=0).celery == {"group": "g", "group_index": 0}


def test_unset_celery_fields_stay_out() -> None:
    found = delivery(group=None, callbacks=[], chain=(), ignore_result=False, expires=None)
    assert found.celery == {}
    assert (found.queue, found.priority, found.engine) == ("x", 6, "x")


def test_platform_headers_and_redelivery_are_read() -> None:
    found = delivery(agents_reply_subject="inbox.1", agents_publish_id="p-1", redelivered=True, retries=2)
    assert (found.reply_subject, found.publish_id, found.redelivered, found.retries) == (
        "inbox.1",
        "p-1",
        True,
        2,
    )
