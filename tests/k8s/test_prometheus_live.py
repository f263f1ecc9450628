"""A real Prometheus scrapes the real stack under load; every alert rule and dashboard query is
checked against what it scraped.

The stack is `agents up` (what `make run` starts); Prometheus (Debian's build) scrapes the four
jobs of k8s/prometheus/prometheus.yml every second from static targets and loads a copy of
k8s/prometheus/alert-rules.yml. After a mixed load (routed successes on every engine, unknown
capabilities, invalid payloads, engine failures, NATS events through the bridge, dead letters
included), every rule expr and every expr of the Grafana dashboard must evaluate without error,
every series selector they use must have scraped series, every dashboard query must return data,
every target must be up and every rule healthy. The catalog-only checks next door
(test_prometheus_rules.py, test_dashboard.py) say a name is declared; this says it is served.

What each query returned is kept in test-artifacts/prometheus/queries.json.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from agents.stack.servers import free_port
from tests.agents.stack.test_up import stack_env, wait_for_line
from tests.conftest import ROOT
from tests.k8s.prometheus_load import EXPECTED_LOAD, run_load
from tests.k8s.prometheus_server import api, ready, series_count, static_targets, write_config
from tests.k8s.promql import grafana_expr, left_side, selectors, unfiltered
from tests.k8s.test_dashboard import DASHBOARD, panels
from tests.k8s.test_prometheus_rules import RULES, rule_blocks, yaml_values
from tests.system_tools import debian_tool

pytestmark = pytest.mark.servers

ARTIFACT = ROOT / "test-artifacts" / "prometheus" / "queries.json"
# Series a short run cannot produce, by selector, each with the reason. Add an entry only with
# its reason.
_ENGINES_AT_WORK = (
    "the default thresholds and rules wait minutes before they act; tests/agents/demo/test_demo.py "
    "checks these counters while the demo's thresholds fire"
)
ALLOWED_MISSING: dict[str, str] = {
    "agent_alerts_total": _ENGINES_AT_WORK,
    'agent_alerts_total{state="fired"}': _ENGINES_AT_WORK,
    "agent_insights_total": _ENGINES_AT_WORK,
    "agent_optimization_actions_total": _ENGINES_AT_WORK,
    "agent_breaker_transitions_total": "the load's failing requests are too few to open a breaker",
    'agent_routing_decisions_total{outcome="explored"}': "no two engines of make run share a capability",
}
# Rules whose label matching may find no series, or drop some of its left side's, even with the
# thresholds as `bool` (e.g. a lone absent()), by alert name, each with the reason. Empty.
ALLOWED_UNMATCHED: dict[str, str] = {}
SETTLE_SECONDS = 5.0  # scrapes after the load before the first check, so rates see it
CHECK_DEADLINE_SECONDS = 60.0  # the checks are retried until they pass or this runs out


@dataclass
class Stack:
    """A running `agents up`: its home, the URLs of stack.env and its process."""

    home: Path
    urls: dict[str, str]
    process: subprocess.Popen[bytes]


@dataclass
class Report:
    """One round of checks: what is wrong, and what each query and selector returned."""

    problems: list[str] = field(default_factory=list)
    queries: dict[str, int] = field(default_factory=dict)
    exprs: dict[str, str] = field(default_factory=dict)
    series: dict[str, int] = field(default_factory=dict)


def queries_to_check() -> dict[str, str]:
    """Every rule's expr (by alert name) and every dashboard target's expr (by panel and refId)."""
    rules = {name: yaml_values(block, "expr") for name, block in rule_blocks(RULES.read_text()).items()}
    assert all(len(exprs) == 1 for exprs in rules.values()), rules
    checked = {f"rule {name}": exprs[0] for name, exprs in rules.items()}
    for panel in panels(json.loads(DASHBOARD.read_text())):
        for target in panel["targets"]:
            checked[f"panel {panel['title']!r} {target['refId']}"] = grafana_expr(target["expr"])
    return checked


def check_query(base: str, name: str, expr: str, start: float, report: Report) -> None:
    """Evaluate one expr, and look up every series it selects, into `report`."""
    report.exprs[name] = expr
    answer = api(base, "/api/v1/query", query=expr, time=f"{time.time():.3f}")
    if answer.get("status") != "success":
        report.problems.append(f"{name}: Prometheus refused {expr!r}: {answer.get('error')}")
        return
    result = answer["data"]["result"]
    report.queries[name] = len(result) if answer["data"]["resultType"] in ("vector", "matrix") else 1
    # A rule's condition holds only while it fires; a panel must always show something.
    if name.startswith("panel") and not result and not all(s in ALLOWED_MISSING for s in selectors(expr)):
        report.problems.append(f"{name}: no data for {expr!r}")
    for selector in selectors(expr):
        for wanted in dict.fromkeys((selector.partition("{")[0], selector)):
            if wanted not in report.series:
                report.series[wanted] = series_count(base, wanted, start)
            if not report.series[wanted] and wanted not in ALLOWED_MISSING:
                report.problems.append(f"{name}: no series {wanted!r} was scraped (used in {expr!r})")


def check_rule_matches(base: str, name: str, expr: str, report: Report) -> None:
    """The rule, thresholds aside, finds series: a `/`, `and on (...)` or `or` whose two sides
    never share labels would keep the rule quiet forever (promtool's tests use made-up labels)."""
    shape = unfiltered(expr)
    answer = api(base, "/api/v1/query", query=shape, time=f"{time.time():.3f}")
    if answer.get("status") != "success":
        report.problems.append(f"{name}: Prometheus refused {shape!r}: {answer.get('error')}")
        return
    report.queries[f"{name}, thresholds as bool"] = len(answer["data"]["result"])
    report.exprs[f"{name}, thresholds as bool"] = shape
    if name.removeprefix("rule ") in ALLOWED_UNMATCHED:
        return
    if not answer["data"]["result"]:
        report.problems.append(f"{name}: matches no series even with its thresholds as bool: {shape!r}")
    left = left_side(shape)
    if left is None:
        return
    # Every series of the left side needs a partner on the right, or it can never fire.
    alone = api(base, "/api/v1/query", query=f"({left}) unless ({shape})", time=f"{time.time():.3f}")
    unmatched = [s["metric"] for s in alone.get("data", {}).get("result", [])]
    if alone.get("status") != "success" or unmatched:
        report.problems.append(
            f"{name}: can never fire for {unmatched or alone.get('error')}: these series of {left!r} "
            f"have no partner on the other side of {shape!r}"
        )


def check_targets_and_rules(base: str, expected: dict[str, int], report: Report) -> None:
    """Every target of the four jobs up (and `up` 1), every rule of the file loaded and healthy."""
    targets = api(base, "/api/v1/targets", state="active")["data"]["activeTargets"]
    jobs = {job: sum(1 for t in targets if t["labels"]["job"] == job) for job in expected}
    if jobs != expected:
        report.problems.append(f"targets per job {jobs}, expected {expected}")
    for target in targets:
        if target["health"] != "up":
            report.problems.append(
                f"target {target['scrapeUrl']} is {target['health']}: {target['lastError']}"
            )
    up = api(base, "/api/v1/query", query="up")["data"]["result"]
    down = [s["metric"] for s in up if s["value"][1] != "1"]
    if len(up) != sum(expected.values()) or down:
        report.problems.append(f"up: {len(up)} series, not 1: {down}")
    rules = [r for g in api(base, "/api/v1/rules")["data"]["groups"] for r in g["rules"]]
    names = set(rule_blocks(RULES.read_text()))
    if {r["name"] for r in rules} != names or len(rules) != len(names):
        report.problems.append(
            f"loaded rules {sorted(r['name'] for r in rules)}, the file has {sorted(names)}"
        )
    for rule in rules:
        if rule["health"] != "ok":
            report.problems.append(f"rule {rule['name']} health {rule['health']}: {rule.get('lastError')}")


def check_all(base: str, queries: dict[str, str], expected: dict[str, int], start: float) -> Report:
    """One round of every check."""
    report = Report()
    check_targets_and_rules(base, expected, report)
    for name, expr in queries.items():
        check_query(base, name, expr, start, report)
        if name.startswith("rule "):
            check_rule_matches(base, name, expr, report)
    return report


def save(report: Report) -> None:
    """test-artifacts/prometheus/queries.json: series returned per query and per selector."""
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "queries": report.queries,
        "series": report.series,
        "exprs": report.exprs,
        "problems": report.problems,
    }
    ARTIFACT.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")


def stop_process_tree(up: subprocess.Popen[bytes], out: Path) -> None:
    """Ctrl-C to `agents up` (as test_up does) and check that no process is left behind."""
    descendants = psutil.Process(up.pid).children(recursive=True) if up.poll() is None else []
    up.send_signal(signal.SIGINT)
    try:
        up.wait(timeout=90)
    finally:
        left = [p for p in descendants if _alive(p)]
        for process in left:  # only what this test started: descendants of its `agents up`
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        if up.poll() is None:
            up.kill()
            up.wait()
    assert up.returncode == 0, out.read_text(errors="replace")[-3000:]
    assert "stopped; no process left running." in out.read_text(errors="replace")
    assert left == [], [p.cmdline() for p in left]


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture()
def stack(tmp_path: Path) -> Iterator[Stack]:
    """`agents up` with a temporary AGENTS_HOME, as tests/agents/stack/test_up.py starts it."""
    home = tmp_path / "home"
    out = tmp_path / "up.out"
    with open(out, "wb") as sink:
        up = subprocess.Popen(
            [str(Path(sys.executable).parent / "agents"), "up"],
            cwd=ROOT,
            env=stack_env(home) | {"FLOWER_PORT": str(free_port())},
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        printed = wait_for_line(out, "Ctrl-C stops everything", up)
        assert "workers 4/4" in printed, printed
        wait_for_line(home / "logs" / "bridge.log", "bridge_started", up, timeout=30)
        urls = dict(line.split("=", 1) for line in (home / "stack.env").read_text().splitlines())
        yield Stack(home, urls, up)
    finally:
        stop_process_tree(up, out)


@pytest.fixture()
def prometheus(stack: Stack, tmp_path: Path) -> Iterator[str]:
    """Debian's Prometheus scraping the stack; its base URL."""
    binary = debian_tool("prometheus", "prometheus")
    folder = tmp_path / "prometheus"
    folder.mkdir()
    config = write_config(folder, stack.urls)
    base = f"http://127.0.0.1:{free_port()}"
    log = folder / "prometheus.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address={base.removeprefix('http://')}",
            ],
            cwd=folder,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while not ready(base):
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, log.read_text(errors="replace")[-3000:]


@pytest.mark.timeout(600)
def test_every_rule_and_panel_query_has_scraped_series_under_load(stack: Stack, prometheus: str) -> None:
    start = time.time() - 1
    queries = queries_to_check()
    expected_targets = {job: len(targets) for job, targets in static_targets(stack.urls).items()}

    assert run_load(stack.home) == EXPECTED_LOAD
    time.sleep(SETTLE_SECONDS)
    deadline = time.monotonic() + CHECK_DEADLINE_SECONDS
    while True:
        report = check_all(prometheus, queries, expected_targets, start)
        if not report.problems or time.monotonic() > deadline:
            break
        time.sleep(2)
    save(report)
    assert report.problems == [], "\n".join(report.problems)
    assert set(queries) <= set(report.queries)

    # The check can fail: a rule on a series nobody serves is reported, by name.
    made_up, expr = Report(), "rate(agents_made_up_total[5m]) > 0"
    check_query(prometheus, "rule MadeUp", expr, start, made_up)
    assert made_up.problems == [
        f"rule MadeUp: no series 'agents_made_up_total' was scraped (used in {expr!r})"
    ]
