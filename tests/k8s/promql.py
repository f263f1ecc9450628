"""PromQL text, for the live Prometheus test: Grafana's variables set, series selectors found, and
a rule's expr made to keep its series whatever its thresholds. Text only, no server."""

from __future__ import annotations

import re

from tests.k8s.test_prometheus_rules import series_in

# Grafana's range variables, as Grafana would set them for a short dashboard range at 1 s scrapes.
GRAFANA_RANGES = {"__rate_interval": "30s", "__interval": "5s", "__range": "5m", "__range_s": "300"}
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_MATCHERS = r'\s*(\{(?:"(?:\\.|[^"\\])*"|[^}"])*\})?'
_COMPARISON = re.compile(r"(==|!=|>=|<=|>|<)(?!\s*bool\b)")


def grafana_expr(expr: str) -> str:
    """A dashboard expr as Grafana sends it: range variables set, label variables match all."""
    for name, value in GRAFANA_RANGES.items():
        expr = re.sub(rf"\$(?:\{{{name}\}}|{name}\b)", value, expr)
    # A label variable (`engine="$engine"`, `engine=~"${engine:regex}"`) becomes "any value".
    expr = re.sub(r'(\w+)\s*(?:=~|=)\s*"[^"]*\$[^"]*"', r'\1=~".*"', expr)
    assert "$" not in _STRING.sub('""', expr), f"unreplaced Grafana variable in {expr!r}"
    return expr


def selectors(expr: str) -> list[str]:
    """Every series selector of a PromQL expr, label matchers kept: `up{job="flower"}`, `x_total`."""
    names, _ = series_in(expr)
    skipped = [m.span() for pattern in (_STRING, _LABEL_LIST) for m in pattern.finditer(expr)]
    found: dict[str, None] = {}
    for name in sorted(names):
        for match in re.finditer(rf"(?<![\w:]){re.escape(name)}(?![\w:(]){_MATCHERS}", expr):
            if not any(start <= match.start() < end for start, end in skipped):
                found[name + re.sub(r"\s+", "", match.group(1) or "")] = None
    return list(found)


def _blank(match: re.Match[str]) -> str:
    return match.group(0)[0] + " " * (len(match.group(0)) - 2) + match.group(0)[-1]


def _masked(expr: str) -> str:
    """expr with the insides of strings and label matchers blanked, positions kept."""
    return re.sub(r"\{[^}]*\}", _blank, _STRING.sub(_blank, expr))


def unfiltered(expr: str) -> str:
    """A rule's expr whatever its thresholds: each comparison made a `bool` one (keeps every
    series) and each `unless` clause dropped (it removes series while the rule should be quiet).
    Series come back only if its binary operations match on the labels really scraped."""
    while found := list(re.finditer(r"\bunless\b", masked := _masked(expr))):
        start = end = found[-1].start()
        depth = 0
        while end < len(expr) and depth >= 0:  # to the end of the clause's parenthesis level
            depth += {"(": 1, ")": -1}.get(masked[end], 0)
            end += depth >= 0
        expr = expr[:start].rstrip() + expr[end:]
    for match in reversed(list(_COMPARISON.finditer(_masked(expr)))):
        expr = f"{expr[: match.end()]} bool{expr[match.end() :]}"
    return expr


def left_side(expr: str) -> str | None:
    """The left operand of an expr joining two sides with `and` or `/` at its top level (None
    when it has no such join, or an `or`, whose sides may rightly differ)."""
    masked, depth, top = _masked(expr), 0, []
    for char in masked:
        depth += {"(": 1, ")": -1}.get(char, 0)
        top.append(depth == 0)
    joins = [m for m in re.finditer(r"\b(?:and|or)\b|/", masked) if top[m.start()]]
    if not joins or any(m.group() == "or" for m in joins):
        return None
    return expr[: joins[0].start()].strip()
