"""The Prometheus alert rules and scrape config: promtool checks and unit tests, catalog-only series."""

from __future__ import annotations

import re
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

from agents.telemetry.catalog import series_names
from tests.conftest import ROOT
from tests.system_tools import debian_tool

PROMETHEUS = ROOT / "k8s" / "prometheus"
RULES = PROMETHEUS / "alert-rules.yml"
RULE_TESTS = PROMETHEUS / "tests" / "alert-rules.test.yml"
CONFIG = PROMETHEUS / "prometheus.yml"

# Flower's own series used by the dashboard, as declared in flower/events.py (Flower 2.x).
FLOWER_SERIES = frozenset({"flower_worker_online"})
JOBS = {"agents-exporter", "agents-workers", "agents-bridge", "flower"}
REQUIRED_ALERTS = {
    "AgentDown", "HighTaskQueueDepth", "TaskFailureRate", "DatabaseConnectionPoolExhausted",
    "CircuitBreakerOpen", "BridgeLagHigh", "HistoryWriterBacklog", "QueueWithoutConsumer", "ExporterDown",
}  # fmt: skip

AGGREGATIONS = frozenset({
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
    "quantile", "limitk", "limit_ratio",
})  # fmt: skip
FUNCTIONS = frozenset({
    "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh", "avg_over_time",
    "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh", "count_over_time", "day_of_month",
    "day_of_week", "day_of_year", "days_in_month", "deg", "delta", "deriv", "double_exponential_smoothing",
    "end", "exp", "floor", "histogram_avg", "histogram_count", "histogram_fraction", "histogram_quantile",
    "histogram_stddev", "histogram_stdvar", "histogram_sum", "holt_winters", "hour", "idelta", "increase",
    "info", "irate", "label_join", "label_replace", "last_over_time", "ln", "log10", "log2", "mad_over_time",
    "max_over_time", "min_over_time", "minute", "month", "pi", "predict_linear", "present_over_time",
    "quantile_over_time", "rad", "rate", "resets", "round", "scalar", "sgn", "sin", "sinh", "sort",
    "sort_by_label", "sort_by_label_desc", "sort_desc", "sqrt", "start", "stddev_over_time",
    "stdvar_over_time", "sum_over_time", "tan", "tanh", "time", "timestamp", "vector", "year",
})  # fmt: skip
KEYWORDS = frozenset({
    "and", "or", "unless", "atan2", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
    "group_right",
})  # fmt: skip
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?")


def series_in(expr: str) -> tuple[set[str], set[str]]:
    """The series names and the function names a PromQL expression uses.

    Strings, Grafana variables, ranges, label matchers and label lists (by, on, ...) are removed
    first, so label names and values never count; an identifier followed by `(` is a function.
    """
    text = _STRING.sub('""', expr)
    text = re.sub(r"\$\{?\w+\}?", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = _LABEL_LIST.sub("", text)
    series: set[str] = set()
    functions: set[str] = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.groups()
        if call:
            functions.add(name)
        elif name not in KEYWORDS and name.lower() not in ("inf", "nan"):
            series.add(name)
    return series, functions


def allowed_series() -> set[str]:
    """The catalog's series, `up`, prometheus_client's process_*/python_* series and Flower's used ones."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    defaults = {sample.name for family in registry.collect() for sample in family.samples}
    return series_names() | defaults | {"up"} | FLOWER_SERIES


def problems(exprs: list[str]) -> list[str]:
    """Every unknown series or function in the expressions, one line each (empty: all fine)."""
    allowed = allowed_series()
    found: list[str] = []
    for expr in exprs:
        series, functions = series_in(expr)
        found += [f"unknown series {name!r} in {expr!r}" for name in sorted(series - allowed)]
        unknown = functions - FUNCTIONS - AGGREGATIONS
        found += [f"unknown function {name!r} in {expr!r}" for name in sorted(unknown)]
        if not series:
            found.append(f"no series at all in {expr!r}")
    return found


def jobs_in(expr: str) -> set[str]:
    """The job label values an expression selects on."""
    return set(re.findall(r'\bjob\s*=~?\s*"([^"]*)"', expr))


def yaml_values(text: str, key: str) -> list[str]:
    """Every value of `key` in a YAML file of the shapes used here (plain, quoted or block scalar).

    PyYAML is no dependency; callers cross-check the count with promtool, so a shape this misses fails.
    """
    lines = text.splitlines()
    values: list[str] = []
    for i, line in enumerate(lines):
        match = re.match(rf"^(\s*)(?:- )?{key}:(?:\s+(.*))?$", line)
        if not match:
            continue
        indent, value = len(match.group(1)), (match.group(2) or "").strip()
        body: list[str] = []
        for following in lines[i + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            body.append(following.strip())
        if value[:1] in ("|", ">"):
            value = ""
        elif value[:1] == '"':
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        elif value[:1] == "'":
            value = value[1:-1].replace("''", "'")
        else:
            value = re.sub(r"\s+#.*$", "", value)
        values.append(" ".join([value, *body]).strip())
    return values


def github_anchors(markdown: str) -> set[str]:
    """GitHub's anchors of a Markdown file's headings (code blocks skipped)."""
    anchors: set[str] = set()
    fenced = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)):
            anchors.add(re.sub(r"[^\w\- ]", "", match.group(1).lower()).replace(" ", "-"))
    return anchors


def rule_blocks(text: str) -> dict[str, str]:
    """Each alerting rule's text by alert name."""
    parts = re.split(r"^\s*- (?=alert:|record:)", text, flags=re.MULTILINE)
    blocks: dict[str, str] = {}
    for part in parts[1:]:
        match = re.match(r"alert:\s*(\w+)", part)
        if match:
            blocks[match.group(1)] = part
    return blocks


@pytest.fixture(scope="module")
def promtool() -> str:
    """Path of Debian's promtool (installed when missing, where possible)."""
    return debian_tool("promtool", "prometheus")


def run(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_rules_are_valid(promtool: str) -> None:
    result = run(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass(promtool: str) -> None:
    result = run(promtool, "test", "rules", str(RULE_TESTS.relative_to(ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_scrape_config_is_valid(promtool: str, tmp_path: Path) -> None:
    # Debian builds Prometheus without Kubernetes service discovery, so its promtool rejects
    # kubernetes_sd_configs: each (identical) block is compared literally here and replaced by a
    # static target; everything else (relabelling, jobs, rule_files) is checked by promtool.
    k8s_sd = "    kubernetes_sd_configs:\n      - role: pod\n        namespaces:\n          names: [agents]\n"
    text = CONFIG.read_text()
    assert text.count("kubernetes_sd_configs:") == text.count(k8s_sd) == len(JOBS)
    (tmp_path / "prometheus.yml").write_text(
        text.replace(k8s_sd, '    static_configs:\n      - targets: ["pod.agents.svc:80"]\n')
    )
    (tmp_path / RULES.name).write_text(RULES.read_text())
    result = run(promtool, "check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout
    assert set(re.findall(r"job_name:\s*(\S+)", text)) == JOBS


def test_rules_use_only_catalog_series(promtool: str) -> None:
    exprs = yaml_values(RULES.read_text(), "expr")
    # promtool counts the rules; a rule whose expr this parser missed makes the counts differ.
    checked = run(promtool, "check", "rules", str(RULES))
    assert f"SUCCESS: {len(exprs)} rules found" in checked.stdout, checked.stdout
    assert problems(exprs) == []
    assert {job for expr in exprs for job in jobs_in(expr)} <= JOBS


def test_every_alert_is_documented_and_has_a_runbook() -> None:
    blocks = rule_blocks(RULES.read_text())
    assert set(blocks) >= REQUIRED_ALERTS
    for name, block in blocks.items():
        for field in ("for", "summary", "description", "runbook"):
            assert re.search(rf"^\s+{field}:\s*\S", block, re.MULTILINE), f"{name} has no {field}"
        assert re.search(r"^\s+severity:\s*(critical|warning|info)\s*$", block, re.MULTILINE), name
        (runbook,) = yaml_values(block, "runbook")
        path, _, anchor = runbook.partition("#")
        assert (ROOT / path).is_file(), f"{name}: runbook {runbook} names no file"
        anchors = github_anchors((ROOT / path).read_text())
        assert anchor in anchors, f"{name}: runbook {runbook} names no heading"


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    cases: defaultdict[str, set[str]] = defaultdict(set)
    current = ""
    for line in RULE_TESTS.read_text().splitlines():
        if match := re.match(r"^\s*(?:- )?alertname:\s*(\w+)", line):
            current = match.group(1)
        elif (match := re.match(r"^\s*(?:- )?exp_alerts:\s*(.*)$", line)) and current:
            cases[current].add("quiet" if match.group(1).strip() == "[]" else "fires")
            current = ""
    alerts = set(rule_blocks(RULES.read_text()))
    assert {name: cases[name] for name in alerts} == {name: {"fires", "quiet"} for name in alerts}


@pytest.mark.parametrize(
    ("expr", "series", "functions"),
    [
        ('up{job="agents-workers"} == 0', {"up"}, set()),
        (
            "sum without (state) (agent_db_connections) / on (job) group_left agent_db_max_connections > 0.8",
            {"agent_db_connections", "agent_db_max_connections"},
            {"sum"},
        ),
        (
            'histogram_quantile(0.9, sum by (le, queue_name) (rate(celery_task_runtime_bucket{a="(b"}[5m])))',
            {"celery_task_runtime_bucket"},
            {"histogram_quantile", "sum", "rate"},
        ),
        (
            'label_replace(x_total offset 1h, "reason", "up == 0", "", "") > 1e3 unless y[$__rate_interval]',
            {"x_total", "y"},
            {"label_replace"},
        ),
    ],
)
def test_series_in_skips_labels_and_functions(expr: str, series: set[str], functions: set[str]) -> None:
    assert series_in(expr) == (series, functions)


def test_an_unknown_series_or_function_is_reported() -> None:
    # The seed's rule on a metric nobody serves here, and a misspelt one.
    assert problems(["pg_stat_activity_count > 18", "rate(agent_task_total[5m]) > 0"]) == [
        "unknown series 'pg_stat_activity_count' in 'pg_stat_activity_count > 18'",
        "unknown series 'agent_task_total' in 'rate(agent_task_total[5m]) > 0'",
    ]
    assert problems(["rates(agent_tasks_total[5m])"]) == [
        "unknown function 'rates' in 'rates(agent_tasks_total[5m])'"
    ]
    assert problems(["vector(1)"]) == ["no series at all in 'vector(1)'"]


def test_flower_series_are_flowers() -> None:
    import flower

    source = (Path(flower.__file__).parent / "events.py").read_text()
    assert {name for name in FLOWER_SERIES if f"'{name}'" not in source} == set()
