"""Beat-scheduled maintenance jobs (more arrive with durable history)."""

from __future__ import annotations

from agents.connections import registry
from agents.names import PRUNE_REGISTRY_TASK
from tasks.app import app


@app.task(name=PRUNE_REGISTRY_TASK)
def prune_registry() -> int:
    """Drop expired worker heartbeats from the registry; returns how many went."""
    return registry().prune()
