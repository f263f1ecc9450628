"""Thresholds as configuration: the defaults load, and a bad file is refused naming line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.monitoring.thresholds import ThresholdConfigError, parse, seconds

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
