"""Logging: JSON lines from every process (LOG_FORMAT=json, the default) or key=value text.

structlog events and plain stdlib records (Celery's own, kombu's, a library's) go through one
stdlib formatter, so every line of a worker, the bridge, the exporter or the history writer has
the same shape: `{"event": ..., "level": ..., "logger": ..., "timestamp": ..., ...}` plus the
request's context (task_id, engine, capability, correlation_id, trace_id) where there is one.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog
from structlog.typing import Processor

# The fields bound while one request runs (agents/execution.py); a log line inside it has them.
REQUEST_CONTEXT = ("task_id", "engine", "capability", "correlation_id", "trace_id")

_TIMESTAMP = structlog.processors.TimeStamper(fmt="iso", utc=True)
# What a plain stdlib record (not from structlog) gets before rendering.
_FOREIGN: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    _TIMESTAMP,
]


def configure_logging() -> None:
    """structlog through the stdlib `logging` tree that Celery and the CLI configure."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            _TIMESTAMP,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def formatter(log_format: str) -> logging.Formatter:
    """The stdlib formatter for every handler: JSON lines, or sorted key=value for `text`."""
    renderer: Processor = (
        structlog.processors.JSONRenderer(default=str)
        if log_format == "json"
        else structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"], sort_keys=True)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_FOREIGN,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )


def use_formatter(logger: logging.Logger, log_format: str) -> None:
    """Put the platform's formatter on every handler of `logger` (Celery's, after it set them up)."""
    for handler in logger.handlers:
        handler.setFormatter(formatter(log_format))


def log_to_stderr(level: str, log_format: str) -> None:
    """Root logger to stderr in the platform's format (processes that Celery does not set up)."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def request_context(**fields: Any) -> dict[str, Any]:
    """The set REQUEST_CONTEXT fields, to bind while a request runs."""
    return {key: value for key, value in fields.items() if key in REQUEST_CONTEXT and value is not None}
