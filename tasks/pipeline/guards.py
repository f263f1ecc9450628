"""What a request must pass before its handler runs, on either execution path.

- Poison: a message that keeps coming back (its worker died, or it was requeued each time)
  fails once TASK_MAX_DELIVERIES is passed, with the reason, instead of going round forever.
  Only redelivered messages are counted, so a first delivery costs nothing.
- Duplicate publish: a bridged task published twice (the bridge crashed between its publish
  and its marker) runs once; the worker claims the task id in PostgreSQL (db/claims.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from agents.connections import redis_client
from agents.errors import PoisonMessage
from agents.names import deliveries_key
from agents.settings import get_settings
from agents.statuses import FAILED
from db.claims import claim
from tasks.pipeline.delivery import Delivery, Outcome

# How long a request's redelivery count is kept (longer than any redelivery cycle).
DELIVERIES_TTL_SECONDS = 86400


@dataclass
class Admission:
    """Which requests may run, which fail without running, which are dropped."""

    run: list[Delivery] = field(default_factory=list)
    refused: list[Outcome] = field(default_factory=list)
    duplicates: list[Delivery] = field(default_factory=list)


def admit(deliveries: Sequence[Delivery], *, claims: bool = True, by_tracer: bool = False) -> Admission:
    """Sort a batch (or one request) by the guards; `claims=False` skips the duplicate check
    (the router: the engine that runs the request claims it)."""
    counts = delivery_counts([d for d in deliveries if d.redelivered])
    limit = get_settings().task_max_deliveries
    admission = Admission()
    for delivery in deliveries:
        delivered = counts.get(delivery.id, 1)
        if delivered > limit:
            error = PoisonMessage(
                f"message delivered {delivered} times (TASK_MAX_DELIVERIES={limit}): its worker died "
                "or it was sent back to the queue each time; not run again"
            )
            admission.refused.append(Outcome(delivery, FAILED, error=error, by_tracer=by_tracer))
        elif claims and delivery.publish_id and not claim(delivery.id, delivery.publish_id):
            admission.duplicates.append(delivery)
        else:
            admission.run.append(delivery)
    return admission


def delivery_counts(redelivered: Sequence[Delivery]) -> dict[str, int]:
    """How many times each redelivered request has reached a worker, this time included."""
    if not redelivered:
        return {}
    pipe = redis_client().pipeline(transaction=False)
    for delivery in redelivered:
        pipe.incr(deliveries_key(delivery.id))
        pipe.expire(deliveries_key(delivery.id), DELIVERIES_TTL_SECONDS)
    replies = pipe.execute()
    # The first delivery is never counted: it is not a redelivery.
    return {d.id: int(replies[2 * i]) + 1 for i, d in enumerate(redelivered)}
