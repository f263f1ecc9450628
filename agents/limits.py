"""Time limits of engine tasks, derived once from AgentConfig and the settings."""

from __future__ import annotations

from agents.settings import get_settings


def hard_limit(task_timeout_seconds: int | None) -> int:
    """Hard time limit of an engine task: its own timeout, else AGENT_TASK_TIMEOUT_SECONDS."""
    return task_timeout_seconds or get_settings().agent_task_timeout_seconds


def soft_limit(hard: int) -> int:
    """Soft limit a little before the hard one, so handlers can clean up."""
    return max(1, hard - get_settings().soft_time_limit_margin_seconds)
