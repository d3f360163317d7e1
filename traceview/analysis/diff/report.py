"""The result of a diff: aligned rows per level, whole-trace metrics, cross-vendor notes, gates."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypedDict

LEVELS = ("op", "kernel", "family", "phase", "step")


class SummaryMetric(TypedDict):
    """One whole-trace metric on both sides (`significant` is None where no interval could be taken)."""

    base: float | None
    test: float | None
    unit: str
    delta: float | None
    delta_pct: float | None
    ci_low_pct: float | None
    ci_high_pct: float | None
    significant: bool | None


@dataclass
class DiffRow:
    """One aligned key (an op, kernel, family, phase or step) with its figures on both sides."""

    key: str
    base_count: int
    test_count: int
    base_total_ns: int
    test_total_ns: int
    base_mean_ns: float | None
    test_mean_ns: float | None
    base_p50_ns: float | None
    test_p50_ns: float | None
    base_share_pct: float
    test_share_pct: float
    delta_ns: int
    delta_pct: float | None
    ci_low_pct: float | None
    ci_high_pct: float | None
    significant: bool
    status: str  # changed, new, vanished

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Gate:
    """A `--fail-on` expression, whether it tripped, and why in one line."""

    expr: str
    tripped: bool
    reason: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class LevelDiff:
    """The rows of one level, largest absolute change first."""

    level: str
    rows: list[DiffRow]
    base_total_ns: int
    test_total_ns: int
    units: str  # what the confidence intervals resample: steps, ranks or none
    paired: bool


@dataclass
class DiffReport:
    """TEST against BASE: the rows of level `by` (and of the levels the gates need), summary, gates."""

    base: str
    test: str
    by: str
    levels: dict[str, LevelDiff]
    summary: dict[str, SummaryMetric]
    min_effect_pct: float
    gates: list[Gate] = field(default_factory=list)
    cross_vendor: dict[str, Any] | None = None
    op_tree: dict[str, list[int]] | None = None  # op-tree path -> [base ns, test ns], for the HTML flame chart

    @property
    def level(self) -> LevelDiff:
        return self.levels[self.by]

    @property
    def rows(self) -> list[DiffRow]:
        return self.level.rows

    @property
    def tripped(self) -> list[Gate]:
        return [g for g in self.gates if g.tripped]

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-able dict (write it with traceview.jsonify.dumps: NaN becomes null)."""
        level = self.level
        return {
            "base": self.base,
            "test": self.test,
            "by": self.by,
            "min_effect_pct": self.min_effect_pct,
            "base_total_ns": level.base_total_ns,
            "test_total_ns": level.test_total_ns,
            "ci_units": level.units,
            "paired": level.paired,
            "rows": [r.to_json() for r in level.rows],
            "summary": self.summary,
            "cross_vendor": self.cross_vendor,
            "gates": [g.to_json() for g in self.gates],
        }
