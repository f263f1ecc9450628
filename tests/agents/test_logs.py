"""JSON lines from every process, with the request's ids inside a request."""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

import pytest
import structlog

from agents.logs import configure_logging, formatter, request_context
from tests.conftest import SESSION_HOME


def render(record_logger: str, emit: Any, log_format: str = "json") -> str:
    """What one handler with the platform's formatter writes for the records `emit` logs."""
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Capture()
    handler.setFormatter(formatter(log_format))
    target = logging.getLogger(record_logger)
    target.addHandler(handler)
    target.setLevel(logging.INFO)
    try:
        emit()
    finally:
        target.removeHandler(handler)
    return "\n".join(lines)


def test_structlog_events_and_plain_records_are_json_with_the_bound_context() -> None:
    configure_logging()
    log = structlog.get_logger("agents.test")
    context = request_context(task_id="t-1", engine="analysis", capability="analysis", trace_id=None, other=1)
    assert context == {"task_id": "t-1", "engine": "analysis", "capability": "analysis"}

    def emit() -> None:
        with structlog.contextvars.bound_contextvars(**context):
            log.info("handled", rows=3)
            logging.getLogger("agents.test").warning("plain %s record", "stdlib")

    first, second = (json.loads(line) for line in render("agents.test", emit).splitlines())
    assert first["event"] == "handled" and first["rows"] == 3 and first["level"] == "info"
    assert second["event"] == "plain stdlib record" and second["level"] == "warning"
    for line in (first, second):
        assert line["task_id"] == "t-1" and line["engine"] == "analysis" and line["logger"] == "agents.test"
        assert line["timestamp"].endswith("Z")


def test_text_format_is_key_value() -> None:
    configure_logging()
    line = render("agents.text", lambda: structlog.get_logger("agents.text").info("hello", n=1), "text")
    assert "event='hello'" in line and "n=1" in line


@pytest.mark.servers
def test_a_handlers_log_line_in_a_worker_is_json_with_the_requests_ids(fleet: str) -> None:
    from tasks import engine_task

    correlation = f"corr-{uuid.uuid4()}"
    request = {"payload": {"log": True}, "correlation_id": correlation, "trace_id": "trace-1"}
    result = engine_task("flaky").delay(request)
    assert result.get(timeout=30)["ok"] is True
    deadline = time.monotonic() + 10
    found: list[dict[str, Any]] = []
    while not found and time.monotonic() < deadline:
        lines = (SESSION_HOME / "fleet.log").read_text(errors="replace").splitlines()
        parsed = [json.loads(line) for line in lines if line.startswith("{")]
        found = [p for p in parsed if p.get("event") == "flaky_says_hello" and p.get("task_id") == result.id]
        time.sleep(0.2)
    assert found, "no JSON line of the handler in fleet.log"
    line = found[0]
    assert (line["engine"], line["capability"], line["correlation_id"]) == ("flaky", "flaky", correlation)
    assert line["trace_id"] == "trace-1"
    # Celery's own lines (not structlog's) are JSON too: its "ready" line, for one.
    assert any(p.get("event", "").endswith(" ready.") and p.get("logger") for p in parsed)
