"""The extension point of a request's life: one class per cross-cutting concern.

dramatiq's `Middleware` is the model: typed no-op hooks, a concern overrides only those it
needs, and every hook is registered once (tasks/pipeline/registry.py). The same hooks run for
every execution path; a batch calls each hook once with all its requests, so a hook can write
them in one round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from tasks.pipeline.delivery import Delivery, Outcome, Published


class Hook:
    """Base class of the pipeline's hooks; every method is a no-op until overridden."""

    # True when Celery's tracer already does this step for the tasks it runs (results, task
    # events, callbacks, retries): the hook then sees only outcomes of batch tasks.
    tracer_does_it: ClassVar[bool] = False

    def after_publish(self, published: Sequence[Published]) -> None:
        """Task messages were handed to the broker (in the process that published them)."""

    def before_process(self, deliveries: Sequence[Delivery]) -> None:
        """Requests are about to run on this worker."""

    def after_process(self, outcomes: Sequence[Outcome]) -> None:
        """Requests ended (success, failure, rejection, revocation) or will run again (retrying)."""

    def after_skip(self, deliveries: Sequence[Delivery], reason: str) -> None:
        """Requests dropped without an outcome of their own (a second publish of a bridged task)."""
