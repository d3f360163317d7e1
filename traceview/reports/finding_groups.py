"""Findings grouped for reading: the first few of each query and severity, then a count of the rest."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby

from traceview.sandbox import Finding

SHOWN_PER_GROUP = 5


@dataclass
class FindingGroup:
    """The findings of one query at one severity, in the report's order."""

    query: str
    severity: str
    shown: list[Finding]
    more: list[Finding]


def group_findings(findings: list[Finding], shown: int = SHOWN_PER_GROUP) -> list[FindingGroup]:
    """Consecutive findings of the same query and severity (the report sorts them so), split after `shown`.

    A run of 24 steps with the device idle reads as five of them and "19 more"; the JSON report keeps all.
    """
    groups = []
    for (query, severity), run in groupby(findings, key=lambda f: (f.query, f.severity)):
        items = list(run)
        groups.append(FindingGroup(query, severity, items[:shown], items[shown:]))
    return groups
