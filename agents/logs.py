"""structlog set-up: key=value events through stdlib logging, so Celery's handlers print them."""

from __future__ import annotations

import structlog


def configure_logging() -> None:
    """Route structlog through the stdlib `logging` tree that Celery and the CLI configure."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.processors.format_exc_info,
            structlog.processors.KeyValueRenderer(key_order=["event"], sort_keys=True),
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
