"""Live figures for routing: the registry's candidates plus engines this process knows by code.

An engine is routable once its worker announces it (tasks/heartbeat.py): the card carries its
task name and queue, so no router or bridge needs the engine's code or a restart.
"""

from __future__ import annotations

from agents.catalog import engines
from agents.connections import registry
from agents.names import engine_task_name
from agents.routing.decision import Candidate


def candidates_for(capability: str | None) -> list[Candidate]:
    """Registry candidates (serving `capability`, or all when None), plus engines this process
    knows that never sent a heartbeat (known, but with no live worker)."""
    found = registry().candidates(capability)
    seen = {c.engine for c in found}
    for engine in engines().values():
        if engine.name not in seen and (capability is None or capability in engine.capabilities):
            assert engine.config is not None  # nosec B101 # narrows the type for mypy, not a check
            found.append(
                Candidate(
                    engine=engine.name,
                    capabilities=frozenset(engine.capabilities),
                    queue_size=engine.config.queue_size,
                    queue=engine.name,
                    task=engine_task_name(engine.name),
                )
            )
    return found
