"""The Grafana dashboard: well-formed panels, catalog-only series, and the generator's exact output."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.k8s.test_prometheus_rules import JOBS, jobs_in, problems, series_in

GRAFANA = ROOT / "k8s" / "grafana"
DASHBOARD = GRAFANA / "agents-dashboard.json"
# The seed's panels (task rates, routing, resources, breakers, database, NATS) and the rest asked for.
REQUIRED_SERIES = {
    "agent_tasks_total", "agent_routing_decisions_total", "agent_routing_confidence_bucket",
    "agent_routing_latency_seconds_bucket", "process_cpu_seconds_total", "process_resident_memory_bytes",
    "agent_breaker_state", "agent_db_query_duration_seconds_bucket", "agent_db_connections",
    "agents_bridge_events_total", "agents_bridge_lag", "celery_queue_length",
    "agent_end_to_end_seconds_bucket", "celery_task_runtime_bucket", "celery_worker_up",
}  # fmt: skip


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel but rows, including panels inside collapsed rows."""
    found: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        found += panel.get("panels", []) if panel["type"] == "row" else [panel]
    return found


def exprs(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in panels(dashboard) for target in panel["targets"]]


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_dashboard", GRAFANA / "build_dashboard.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_dashboard_is_what_the_generator_writes() -> None:
    assert DASHBOARD.read_text() == generator().render(), "run python k8s/grafana/build_dashboard.py"


def test_dashboard_header(dashboard: dict[str, Any]) -> None:
    assert dashboard["schemaVersion"] == 39
    assert dashboard["title"] and dashboard["uid"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"


def test_every_panel_has_a_title_a_datasource_and_queries(dashboard: dict[str, Any]) -> None:
    assert panels(dashboard)
    for panel in panels(dashboard):
        assert panel.get("title"), panel
        assert panel.get("datasource") == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel.get("targets"), panel["title"]
        for target in panel["targets"]:
            assert target.get("expr", "").strip(), panel["title"]
            assert target.get("datasource") == panel["datasource"], panel["title"]
            # A legend names labels as {{label}}; a lone {label} would be printed as is.
            assert "{" not in re.sub(r"\{\{\s*\w+\s*\}\}", "", target.get("legendFormat", "")), target
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]


def test_panel_ids_are_unique_and_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    every = [*dashboard["panels"], *(p for row in dashboard["panels"] for p in row.get("panels", []))]
    ids = [panel["id"] for panel in every]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_dashboard_uses_only_catalog_series(dashboard: dict[str, Any]) -> None:
    assert problems(exprs(dashboard)) == []
    assert {job for expr in exprs(dashboard) for job in jobs_in(expr)} <= JOBS


def test_dashboard_has_the_seed_panels(dashboard: dict[str, Any]) -> None:
    used = set().union(*(series_in(expr)[0] for expr in exprs(dashboard)))
    assert REQUIRED_SERIES - used == set()


def test_quantiles_keep_the_le_label(dashboard: dict[str, Any]) -> None:
    for expr in exprs(dashboard):
        if "histogram_quantile" in expr:
            assert re.search(r"\bby \([^)]*\ble\b", expr), expr
