"""Thresholds as configuration: the defaults load, and a bad file is refused naming line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.monitoring.thresholds import Threshold, ThresholdConfigError, parse, seconds

DEFAULTS = Path(__file__).parents[3] / "agents" / "monitoring" / "default_thresholds.yml"


def test_the_defaults_are_the_seeds_rules_with_their_windows() -> None:
    config = parse(DEFAULTS.read_text(), str(DEFAULTS))
    by_name = {t.name: t for t in config.thresholds}
    assert {"AgentDown", "HighTaskQueueDepth", "TaskFailureRate", "DatabaseConnectionPoolExhausted"} <= set(
        by_name
    )
    queue = by_name["HighTaskQueueDepth"]
    assert (queue.metric, queue.comparison, queue.value, queue.for_seconds) == ("queue_depth", ">", 1000, 300)
    assert by_name["TaskFailureRate"].for_seconds == 600
    assert by_name["DatabaseConnectionPoolExhausted"].selects("platform")
    assert not by_name["DatabaseConnectionPoolExhausted"].selects("analysis")
    assert by_name["AgentDown"].holds(0) and not by_name["AgentDown"].holds(1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [(90, 90.0), ("90s", 90.0), ("5m", 300.0), ("1h", 3600.0), ("250ms", 0.25), ("1.5m", 90.0)],
)
def test_durations(text: object, expected: float) -> None:
    assert seconds(text) == expected


BAD = """\
thresholds:
  - name: Deep
    metric: queue_depth
    comparison: ">"
    value: 10
  - name: Typo
    metric: queue_dept
    comparison: "=>"
    value: 1
    for: soon
webhooks: {}
"""


def test_a_bad_file_names_each_problem_by_line_and_field() -> None:
    with pytest.raises(ThresholdConfigError) as caught:
        parse(BAD, "mine.yml")
    message = str(caught.value)
    assert "mine.yml:7: thresholds.1.metric: Input should be" in message
    assert "mine.yml:8: thresholds.1.comparison: Input should be" in message
    assert "mine.yml:10: thresholds.1.for: Value error, 'soon' is not a duration" in message
    assert "Deep" not in message  # the good rule is not blamed


def test_unknown_fields_channels_and_webhooks_are_refused() -> None:
    text = """\
thresholds:
  - name: A
    metric: live_workers
    comparison: "=="
    value: 0
    channels: [webhook:pager]
    colour: red
"""
    with pytest.raises(ThresholdConfigError, match=r"<thresholds>:7: thresholds.0.colour: Extra inputs"):
        parse(text)
    fixed = text.replace("    colour: red\n", "")
    with pytest.raises(ThresholdConfigError, match="channel 'webhook:pager' names no entry of `webhooks`"):
        parse(fixed)
    assert parse(fixed + "webhooks: {pager: 'http://127.0.0.1:9/hook'}\n").webhooks == {
        "pager": "http://127.0.0.1:9/hook"
    }


def test_not_yaml_and_repeated_names_are_refused() -> None:
    with pytest.raises(ThresholdConfigError, match="not valid YAML"):
        parse("thresholds: [\n")
    rule = '  - {name: A, metric: queue_depth, comparison: ">", value: 1}\n'
    with pytest.raises(ThresholdConfigError, match="repeated: A"):
        parse("thresholds:\n" + rule + rule)


def test_the_setting_picks_the_file_and_a_missing_file_is_named(tmp_path: Path) -> None:
    from agents.monitoring.files import configured_thresholds
    from agents.settings import Settings

    assert len(configured_thresholds(Settings(_env_file=None)).thresholds) >= 4  # the defaults
    mine = tmp_path / "mine.yml"
    mine.write_text('thresholds:\n  - {name: A, metric: queue_depth, comparison: ">", value: 5}\n')
    settings = Settings(_env_file=None, monitoring_thresholds=mine)
    assert [t.name for t in configured_thresholds(settings).thresholds] == ["A"]
    gone = Settings(_env_file=None, monitoring_thresholds=tmp_path / "gone.yml")
    with pytest.raises(ThresholdConfigError, match=r"MONITORING_THRESHOLDS=.*gone.yml: cannot read it"):
        configured_thresholds(gone)


def test_the_defaults_watch_memory_and_the_bridge_as_the_prometheus_rules_do() -> None:
    import yaml

    by_name = {t.name: t for t in parse(DEFAULTS.read_text(), str(DEFAULTS)).thresholds}
    worker = by_name["WorkerMemoryHigh"]
    assert (worker.metric, worker.value, worker.for_seconds) == ("worker_memory_bytes", 2**30, 600)
    assert worker.selects("analysis") and not worker.holds(2**30) and worker.holds(2**30 + 1)
    redis = by_name["RedisMemoryHigh"]
    assert (redis.metric, redis.value, redis.for_seconds, redis.selector) == (
        "redis_memory_ratio",
        0.9,
        300,
        "platform",
    )
    assert by_name["BridgeLagUnknown"].metric == "bridge_report_age_seconds"
    # BridgeLagHigh: the alert rule's name, value and window (k8s/prometheus/alert-rules.yml).
    rules = yaml.safe_load((DEFAULTS.parents[2] / "k8s" / "prometheus" / "alert-rules.yml").read_text())
    (rule,) = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "BridgeLagHigh"]
    lag = by_name["BridgeLagHigh"]
    assert f"agents_bridge_lag > {lag.value:g} " in rule["expr"]
    assert seconds(rule["for"]) == lag.for_seconds and rule["labels"]["severity"] == lag.severity


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("512MiB", 512 * 2**20),
        ("2GB", 2e9),
        ("1.5KiB", 1536.0),
        ("1 TiB", 2.0**40),
        ("0.9", 0.9),
        (1000, 1000.0),
    ],
)
def test_values_may_be_sizes(text: object, expected: float) -> None:
    rule = {"name": "A", "metric": "worker_memory_bytes", "comparison": ">", "value": text}
    assert Threshold.model_validate(rule).value == expected


def test_a_bad_size_is_refused_by_line_and_field() -> None:
    text = (
        'thresholds:\n  - name: A\n    metric: worker_memory_bytes\n    comparison: ">"\n    value: 2 gigs\n'
    )
    with pytest.raises(
        ThresholdConfigError, match=r"mine.yml:5: thresholds.0.value: Input should be a valid number"
    ):
        parse(text, "mine.yml")


def test_the_defaults_over_snapshots_of_a_dead_bridge_and_a_big_worker() -> None:
    from agents.monitoring.alerting import AlertState, evaluate
    from agents.monitoring.snapshot import BridgeFigures, EngineFigures, Reading, measurements
    from agents.telemetry.usage import WorkerUsage

    thresholds = parse(DEFAULTS.read_text(), str(DEFAULTS)).thresholds
    state = AlertState()
    big = [WorkerUsage("analysis@a", ("analysis",), 5.0, 1100 * 2**20)]
    fired: list[tuple[str, str, float | None]] = []
    # A bridge that stopped reporting 31 s ago, still silent 2 and 10 minutes later; the worker big.
    for at, age in ((0.0, 31.0), (120.0, 151.0), (600.0, 631.0)):
        reading = Reading(
            at=at,
            engines=[EngineFigures("analysis", "agents.engine.analysis", 0, 1, 0.0)],
            workers=big,
            bridge=BridgeFigures(lag=0, paused=False, age_seconds=age),
        )
        fired += [
            (t.threshold.name, t.subject, t.value)
            for t in evaluate(thresholds, measurements(None, reading), at, state)
        ]
    assert fired == [
        ("BridgeLagUnknown", "platform", 151.0),  # after its 2 minutes; the stale lag never reads as 0
        ("WorkerMemoryHigh", "analysis", 1100.0 * 2**20),  # after its 10 minutes
    ]
