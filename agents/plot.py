"""`agents loadtest --plot`: offered and achieved rate, and latency percentiles, over the run.

Drawn on matplotlib's Agg canvas directly (no pyplot), so no display and no global figure state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from agents.loadstats import Second


def _ms(value: float | None) -> float:
    return math.nan if value is None else value  # NaN leaves a gap: no success sent that second


def draw(seconds: Sequence[Second], title: str, path: Path) -> Path:
    """Two stacked panels, rate on top and latency below, saved as a PNG at `path`."""
    figure = Figure(figsize=(10, 7), layout="constrained")
    FigureCanvasAgg(figure)
    rates, latency = figure.subplots(2, 1, sharex=True)
    # Second n covers [n, n+1): rates as stairs over it, latencies at its middle.
    edges = [s.second for s in seconds] + [seconds[-1].second + 1] if seconds else [0]
    x = [s.second + 0.5 for s in seconds]
    rates.stairs([s.offered for s in seconds], edges, label="offered", color="tab:gray", linewidth=2)
    rates.stairs([s.achieved for s in seconds], edges, label="achieved (successes)", color="tab:blue")
    rates.set_ylabel("requests / s")
    rates.set_ylim(bottom=0)
    rates.legend(loc="best")
    rates.grid(alpha=0.3)
    for name, color in (("p50", "tab:green"), ("p95", "tab:orange"), ("p99", "tab:red")):
        values = [_ms(getattr(s, f"{name}_ms")) for s in seconds]
        latency.plot(x, values, marker="o", markersize=3, label=name, color=color)
    latency.set_ylabel("latency, ms (by second sent)")
    latency.set_xlabel("seconds since the first send")
    latency.set_ylim(bottom=0)
    latency.legend(loc="best")
    latency.grid(alpha=0.3)
    figure.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=100)
    return path
