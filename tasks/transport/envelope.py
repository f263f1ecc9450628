"""What the worker must be able to read of a fetched raw message before kombu and Celery see it.

FETCH (scripts.py) checks what Lua's cjson can; Python is stricter. Its json refuses what cjson
accepts (a raw control character in a string, 0x10, +1, nan), nests less deep (the recursion
limit), and refuses integers over 4300 digits; and kombu's Message() needs a body it can decode
and text content fields. A raw message failing here raises Malformed: the channel moves it to
the malformed list intact (`set_aside`), counts it, and delivers the other messages of its fetch.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads

from agents.names import BROKER_MALFORMED_KEY
from tasks import refusals
from tasks.internals.kombu import remove_unacked


class Malformed(Exception):
    """A raw message that is no kombu envelope this worker can read; the message says why."""


def decode(raw: bytes) -> dict[str, Any]:
    """The envelope of a raw message FETCH accepted, as kombu's own reader decodes it."""
    try:
        payload = loads(bytes_to_str(raw))
    except Exception as exc:  # RecursionError, ValueError, or a kombu type hook's TypeError
        raise Malformed(f"not JSON Python can decode: {type(exc).__name__}: {str(exc)[:200]}") from None
    if not isinstance(payload, dict):  # cjson reads {} and [] alike
        raise Malformed("not a JSON object")
    return payload


class Message(virtual.Message):
    """kombu's message, refusing (Malformed) an envelope kombu or Celery cannot read.

    Built by the channel's consume callback before the message is tracked or handed to Celery,
    so a refusal here leaves nothing half done. The checks are a few isinstance calls, and
    the body is decoded once, as kombu always does: cheap for every message."""

    def __init__(self, payload: dict[str, Any], channel: Any = None, **kwargs: Any) -> None:
        properties = payload.get("properties")
        if not isinstance(properties, dict) or not isinstance(properties.get("delivery_info"), dict):
            raise Malformed("properties.delivery_info is not an object")
        if not isinstance(payload.get("headers") or {}, dict):
            raise Malformed(f"headers is {_kind(payload.get('headers'))}, not an object")
        for name in ("body", "content-type", "content-encoding"):
            value = payload.get(name)
            if value is not None and not isinstance(value, str):
                raise Malformed(f"{name} is {_kind(value)}, not text")
        encoding = properties.get("body_encoding")
        if encoding is not None and not isinstance(encoding, str):
            raise Malformed(f"properties.body_encoding is {_kind(encoding)}, not text")
        try:
            super().__init__(payload, channel=channel, **kwargs)
        except Exception as exc:  # the body does not decode with its body_encoding
            raise Malformed(
                f"body does not decode with body_encoding {encoding!r}: {type(exc).__name__}: {exc}"
            ) from None


def set_aside(channel: Any, queue: str, tag: str, raw: bytes, recorded: bool, why: str) -> None:
    """Move a fetched message to the malformed list, intact, in one transaction with the removal of
    its unacked entries (if the fetch `recorded` it): it is never in neither place, nor in both."""
    with channel.conn_or_acquire() as client:
        pipe = client.pipeline(transaction=True)
        if recorded:
            remove_unacked(channel.qos, tag, pipe)
        pipe.lpush(BROKER_MALFORMED_KEY, raw)
        pipe.execute()
    report(queue, why)


def report(queue: str, why: str, count: int = 1) -> None:
    """Log and count messages of `queue` moved to the malformed list."""
    refusals.refused_raw(queue, refusals.MALFORMED, why, count, kept_in=BROKER_MALFORMED_KEY)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )
