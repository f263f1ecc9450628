"""Writes agents-dashboard.json, the Grafana dashboard of the agents platform; run it after editing.

    python k8s/grafana/build_dashboard.py          # rewrite agents-dashboard.json
    python k8s/grafana/build_dashboard.py --check  # exit 1 when the JSON is stale

The panels are in dashboard_panels.py. Every series a panel uses must be declared in
agents/telemetry/catalog.py, and the JSON must be what this script writes: tests/k8s/test_dashboard.py
checks both. Standard library only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# The panels sit beside this script, which runs as a file (python k8s/grafana/build_dashboard.py).
sys.path.insert(0, str(Path(__file__).parent))
from dashboard_panels import ROWS, Panel

OUT = Path(__file__).with_name("agents-dashboard.json")
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
HEIGHT = 8


def panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    """The Grafana JSON of one panel."""
    defaults: dict[str, Any] = {"unit": panel.unit, **panel.extra}
    if panel.threshold is not None:
        defaults["thresholds"] = {
            "mode": "absolute",
            "steps": [{"color": "green", "value": None}, {"color": "red", "value": panel.threshold}],
        }
        defaults["custom"] = {"thresholdsStyle": {"mode": "line"}}
    if panel.kind == "timeseries":
        options: dict[str, Any] = {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    elif panel.kind == "stat":
        options = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "textMode": "value_and_name",
        }
    else:  # state-timeline: the colours come from the value mappings
        options = {"showValue": "never", "mergeValues": True, "legend": {"showLegend": False}}
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": HEIGHT, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": [
            {"datasource": DATASOURCE, "refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(panel.queries)
        ],
    }


def dashboard() -> dict[str, Any]:
    """The whole dashboard: one collapsible row per group, panels laid out left to right."""
    panels: list[dict[str, Any]] = []
    y = 0
    for title, row in ROWS:
        panels.append(
            {"id": len(panels) + 1, "type": "row", "title": title, "collapsed": False, "panels": [],
             "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}}
        )  # fmt: skip
        y, x = y + 1, 0
        for panel in row:
            if x + panel.width > 24:
                y, x = y + HEIGHT, 0
            panels.append(panel_json(panel, len(panels) + 1, x, y))
            x += panel.width
        y += HEIGHT
    return {
        "title": "Agents platform",
        "uid": "agents-platform",
        "description": "Tasks, routing, queues, workers, breakers, PostgreSQL and the NATS bridge "
        "(k8s/grafana/build_dashboard.py writes this file).",
        "tags": ["agents", "celery"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "browser",
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "refresh": 1,
                    "regex": "",
                    "options": [],
                }
            ]
        },
        "panels": panels,
    }


def render() -> str:
    """The file's exact text."""
    return json.dumps(dashboard(), indent=2) + "\n"


def main(argv: list[str]) -> int:
    """Write the JSON, or with --check report whether it is stale."""
    if "--check" in argv:
        if OUT.read_text() != render():
            print(f"{OUT} is stale: run python {Path(__file__).as_posix()}", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(render())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
