"""The built-in engines, one per module."""

from __future__ import annotations

from agents.base import BaseAgent
from agents.engines.analysis import AnalysisEngine
from agents.engines.intelligence import IntelligenceEngine
from agents.engines.optimization import OptimizationEngine
from agents.engines.performance import PerformanceEngine


def builtin_engines() -> list[BaseAgent]:
    """Fresh instances of the four built-in engines."""
    return [IntelligenceEngine(), PerformanceEngine(), OptimizationEngine(), AnalysisEngine()]
