"""Where the thresholds and the optimization rules come from: MONITORING_THRESHOLDS and
OPTIMIZATION_RULES, or the defaults shipped with the package; and whether both files load."""

from __future__ import annotations

import textwrap
from pathlib import Path

from agents.monitoring.optimization import Rules, parse_rules
from agents.monitoring.thresholds import ThresholdConfigError, Thresholds, parse
from agents.settings import Settings

DEFAULT_THRESHOLDS = Path(__file__).with_name("default_thresholds.yml")
DEFAULT_RULES = Path(__file__).with_name("default_rules.yml")


def configured_thresholds(settings: Settings) -> Thresholds:
    """The thresholds in force; ThresholdConfigError (naming line and field) if the file is bad."""
    path = settings.monitoring_thresholds or DEFAULT_THRESHOLDS
    return parse(_read(path, "MONITORING_THRESHOLDS"), str(path))


def configured_rules(settings: Settings) -> Rules:
    """The optimization rules in force; ThresholdConfigError (naming line and field) if the file is bad."""
    path = settings.optimization_rules or DEFAULT_RULES
    return parse_rules(_read(path, "OPTIMIZATION_RULES"), str(path))


def configuration_problems(settings: Settings) -> list[str]:
    """What is wrong with the thresholds and the rules files in force (each message names the
    file, line and field); empty when both load. Checked when a maintenance worker starts, by
    `agents up` and by `agents doctor`, so a bad file is refused before any monitor run."""
    problems = []
    loaders = {"MONITORING_THRESHOLDS": configured_thresholds, "OPTIMIZATION_RULES": configured_rules}
    for setting, load in loaders.items():
        try:
            load(settings)
        except ThresholdConfigError as exc:
            problems.append(f"{setting} is refused:\n{textwrap.indent(str(exc), '  ')}")
    return problems


def _read(path: Path, setting: str) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise ThresholdConfigError(f"{setting}={path}: cannot read it ({exc.strerror})") from None
