"""Agent engines on Celery: the engine contract a custom engine imports."""

from __future__ import annotations

from agents.base import AgentMetrics, BaseAgent
from agents.models import AgentConfig, Decision, Priority, TaskRequest

__all__ = ["AgentConfig", "AgentMetrics", "BaseAgent", "Decision", "Priority", "TaskRequest"]
