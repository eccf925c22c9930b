"""What the chart's PromQL refers to: metric names, the label names it matches and groups by.

A small reader, not a parser: enough for expressions written like the chart's (selectors with
double-quoted values, ``by``/``without`` groupings), checked against the services' /metrics by
``test_metric_names``. That the expressions parse at all is promtool's job."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.chartcheck import Rendered
from tools.chartcheck.promtool import rule_groups

_STRING = r'"(?:[^"\\]|\\.)*"'
# A selector with braces; a value may hold "}".
_SELECTOR = re.compile(rf"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{{((?:[^}}\"]|{_STRING})*)\}}")
_MATCHER = re.compile(rf"([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*({_STRING})")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
# An identifier not preceded by a word character, '.' or ':' (so not the "m" of "10m").
_IDENTIFIER = re.compile(r"(?<![\w.:$])[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = {
    "and", "or", "unless", "offset", "bool", "atan2", "group_left", "group_right", "inf", "nan",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Selector:
    metric: str
    matchers: dict[str, str]
    """Label name -> the quoted value it is compared with (the last one, if several)."""


def selectors(expression: str) -> list[Selector]:
    """Every ``name{...}`` of ``expression``, with its matchers."""
    return [
        Selector(m.group(1), {label: value for label, _, value in _MATCHER.findall(m.group(2))})
        for m in _SELECTOR.finditer(expression)
    ]


def metric_names(expression: str) -> set[str]:
    """Every metric name, with braces or without (``up == 0``)."""
    text = re.sub(_STRING, '""', expression)
    text = _GROUPING.sub(" ", text)
    text = re.sub(r"\{[^}]*\}", " ", text)  # matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    names = set()
    for found in _IDENTIFIER.finditer(text):
        rest = text[found.end() :].lstrip()
        if found.group() not in _KEYWORDS and not rest.startswith("("):  # not a function
            names.add(found.group())
    return names


def grouping_labels(expression: str) -> set[str]:
    """The labels of ``by (...)``, ``without (...)``, ``on (...)`` and the like."""
    return {
        label.strip()
        for labels in _GROUPING.findall(re.sub(_STRING, '""', expression))
        for label in labels.split(",")
        if label.strip()
    }


def alert_rules(rendered: list[Rendered]) -> list[dict[str, Any]]:
    return [rule for group in rule_groups(rendered) for rule in group["rules"]]


def dashboard_queries(path: Path) -> Iterator[tuple[str, str]]:
    """(where, query) for every PromQL query of a Grafana dashboard: the panels' targets, and
    the selector inside each query variable's ``label_values(<selector>, label)`` (Grafana's
    function, not PromQL)."""
    dashboard = json.loads(path.read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            if "expr" in target:
                yield f"panel {panel['title']!r}", target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"]
            found = re.fullmatch(r"label_values\((.+), *\w+\)", query)
            if found is None:
                raise ValueError(f"variable {variable['name']}: not label_values(...): {query}")
            yield f"variable {variable['name']!r}", found.group(1)
