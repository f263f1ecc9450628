"""One error hierarchy: permanent errors are never retried, transient ones may be.

Each error carries a single message argument so Celery's JSON result backend can rebuild it in
the caller's process (`result.get()` raises the same class).
"""

from __future__ import annotations


class AgentsError(Exception):
    """Base of every error the platform raises on purpose."""

    kind = "error"


class PermanentError(AgentsError):
    """Retrying cannot help; the request is rejected with its reason."""


class TransientError(AgentsError):
    """The same request may succeed later."""


class InvalidRequest(PermanentError):
    """The request failed validation; the message names the field and the problem."""

    kind = "invalid_request"


class UnknownCapability(PermanentError):
    """No registered engine offers the requested capability."""

    kind = "unknown_capability"


class NoLiveEngine(TransientError):
    """Engines offer the capability, but none has a live worker or a closed breaker."""

    kind = "no_live_engine"


class Backpressure(TransientError):
    """Every candidate engine queue is at or over its queue_size."""

    kind = "backpressure"


class RequestTimeout(AgentsError):
    """The request's own `timeout` ran out before the handler finished (counts against the engine)."""

    kind = "request_timeout"


class PoisonMessage(PermanentError):
    """The request's message kept coming back (its worker died or it was requeued each time)."""

    kind = "poison"


class UnsupportedOption(PermanentError):
    """A Celery option the task cannot honour (per-call time limits on a batch task)."""

    kind = "unsupported_option"


class PayloadTooLarge(PermanentError):
    """A task body (serialized) or an event body over MAX_PAYLOAD_BYTES; the message names both."""

    kind = "too_large"


class EngineConfigError(PermanentError):
    """An engine definition (AGENT_ENGINES entry, AgentConfig) is wrong."""

    kind = "engine_config"


REJECTION_ERRORS: tuple[type[AgentsError], ...] = (
    InvalidRequest,
    UnknownCapability,
    NoLiveEngine,
    Backpressure,
)
