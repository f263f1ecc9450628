"""One NATS event as the bridge sees it, its deterministic task id, and its request.

Pure: no I/O, so the rules that make redeliveries harmless are tested without servers.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from agents.bridge.mapping import Route

# Fixed namespace: the same event gives the same task id in every bridge process, forever.
TASK_ID_NAMESPACE = uuid.UUID("8b3f3b8e-6a43-5d3e-9a59-2f0c7e1d4a10")
MSG_ID_HEADER = "Nats-Msg-Id"
REPLY_HEADER = "Reply-To"
# Optional request fields an event may carry as headers.
FIELD_HEADERS = {"Priority": "priority", "Correlation-Id": "correlation_id", "Trace-Id": "trace_id"}
TOO_LARGE = "too_large"
# An oversized event's dead letter keeps the head of its body: the whole would not fit NATS either.
TOO_LARGE_KEPT_BYTES = 4096


class BadEvent(Exception):
    """The event can never become a task; `kind` names why (dead-letter reason)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Event:
    """Subject, headers, body and delivery count of one JetStream message."""

    subject: str
    data: bytes
    headers: dict[str, str] = field(default_factory=dict)
    num_delivered: int = 1

    @property
    def reply_subject(self) -> str | None:
        """Where the engine's result goes (msg.reply is JetStream's ack subject, so a header)."""
        return self.headers.get(REPLY_HEADER) or None


def task_id_for(event: Event) -> str:
    """uuid5 of the Nats-Msg-Id, else of subject, headers and body, so a redelivery keeps its id."""
    msg_id = event.headers.get(MSG_ID_HEADER)
    if msg_id:
        return str(uuid.uuid5(TASK_ID_NAMESPACE, f"msg-id:{msg_id}"))
    # Headers count (a Priority header makes another request); their order does not.
    headers = json.dumps(sorted(event.headers.items())).encode()
    digest = hashlib.sha256(event.subject.encode() + b"\0" + headers + b"\0" + event.data).hexdigest()
    return str(uuid.uuid5(TASK_ID_NAMESPACE, f"content:{digest}"))


def check_size(event: Event, max_bytes: int) -> None:
    """BadEvent('too_large') for a body over `max_bytes` (MAX_PAYLOAD_BYTES)."""
    if len(event.data) > max_bytes:
        size = len(event.data)
        raise BadEvent(
            TOO_LARGE, f"body is {size} bytes, over the limit of {max_bytes} bytes (MAX_PAYLOAD_BYTES)"
        )


def raw_request(event: Event, route: Route) -> dict[str, Any]:
    """The raw TaskRequest dict of an event: the route's capability and task type, the body as payload."""
    try:
        body = json.loads(event.data) if event.data.strip() else {}
    except (ValueError, RecursionError) as exc:
        # ValueError: not UTF-8, not JSON, or an integer over 4300 digits; RecursionError: nested
        # deeper than Python decodes. Either way a poison that must be dead-lettered, not retried.
        raise BadEvent("bad_json", f"body is not JSON: {type(exc).__name__}: {str(exc)[:200]}") from None
    if not isinstance(body, dict):
        raise BadEvent("invalid_request", f"body must be a JSON object, got {type(body).__name__}")
    raw: dict[str, Any] = {"capability": route.capability, "task_type": route.task_type, "payload": body}
    for header, name in FIELD_HEADERS.items():
        if event.headers.get(header):
            raw[name] = event.headers[header]
    return raw


def nak_delay(num_delivered: int, base: float, cap: float) -> float:
    """Exponential redelivery delay: base, 2 * base, 4 * base ... never above cap."""
    exponent = min(max(num_delivered, 1) - 1, 30)
    return float(min(cap, base * 2**exponent))


def dead_letter_body(event: Event, kind: str, error: str) -> bytes:
    """JSON kept on the dead-letter subject: enough to understand and replay the event (an
    oversized one's body is cut to its first TOO_LARGE_KEPT_BYTES, and `data_bytes` says its size)."""
    too_large = kind == TOO_LARGE
    data = event.data[:TOO_LARGE_KEPT_BYTES] if too_large else event.data
    letter: dict[str, Any] = {
        "subject": event.subject,
        "headers": event.headers,
        "data": data.decode("utf-8", errors="replace"),
        "error": {"kind": kind, "message": error},
        "num_delivered": event.num_delivered,
    }
    if too_large:
        letter["data_bytes"] = len(event.data)
    return json.dumps(letter).encode()
