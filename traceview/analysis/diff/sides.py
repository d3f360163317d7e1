"""One side of a comparison: a store opened in DuckDB, and the SQL giving its items at each level."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import duckdb
import polars as pl

from traceview.analysis.attribution import create_owners
from traceview.analysis.diff.names import canonical_op, normalise_kernel
from traceview.analysis.diff.report import LEVELS
from traceview.analysis.families import family_ctes
from traceview.engine import connect, resolve_store
from traceview.errors import UserError
from traceview.packs import find_pack
from traceview.sandbox import run_query

UNATTRIBUTED = "(unattributed)"  # the op key of device time with no known framework op


def one_row(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    """The first row of a query."""
    return con.sql(sql).limit(1).fetchall()[0]


class Side:
    """One trace (or store) of the comparison, with its DuckDB connection."""

    def __init__(self, target: Path, cache_dir: Path | None = None) -> None:
        self.target = target
        self.store = resolve_store(target, cache_dir)
        self.con = connect(self.store)
        self.con.sql("SET enable_progress_bar = false")
        self._owners: str | None = None

    def close(self) -> None:
        self.con.close()

    def sql(self, query: str) -> pl.DataFrame:
        return cast(pl.DataFrame, pl.from_arrow(self.con.sql(query).to_arrow_table()))

    def vendors(self) -> set[str]:
        return {r[0] for r in self.con.sql("SELECT DISTINCT device_type FROM device_tasks").fetchall()}

    def unit_column(self) -> tuple[str, str]:
        """What the per-unit totals are taken over: steps when there are several, else ranks."""
        steps = one_row(self.con, "SELECT count(DISTINCT step) FROM slices WHERE kind = 'step'")[0]
        if steps >= 2:
            return "coalesce(step, -1)", "steps"
        ranks = one_row(self.con, "SELECT count(DISTINCT trace_id) FROM traces")[0]
        if ranks >= 2:
            return "rank", "ranks"
        return "0", "none"

    def register(self, name: str, frame: pl.DataFrame) -> None:
        self.con.register(name, frame.to_arrow())

    def op_canon_frame(self) -> pl.DataFrame:
        """`(name, key)`: each framework op name with its vendor-neutral key."""
        names = self.sql("SELECT DISTINCT name FROM ops")["name"].to_list()
        return pl.DataFrame(
            {"name": names, "key": [canonical_op(n) for n in names]}, schema={"name": pl.String, "key": pl.String}
        )

    def items_sql(self, level: str, cross: bool) -> str:
        """SQL giving (key, unit, dur_ns) per item of LEVEL on this side."""
        unit, _ = self.unit_column()
        if level == "op" and cross:
            self.register("_ops_canon", self.op_canon_frame())
            return (
                f"SELECT coalesce(c.key, a.op_name) AS key, {unit.replace('step', 'a.step')} AS unit, a.dur_ns "
                f"FROM ({self.attributed_sql()}) a LEFT JOIN _ops_canon c ON c.name = a.op_name"
            )
        if level == "op":
            return f"SELECT name AS key, {unit} AS unit, dur_ns FROM ops"
        if level in ("kernel", "family"):
            self._register_task_keys(level)
            return (
                f"SELECT k.key, {unit.replace('step', 'd.step')} AS unit, d.dur_ns FROM device_tasks d "
                "JOIN _keys k ON k.name IS NOT DISTINCT FROM d.name AND k.kind = d.kind"
            )
        if level == "phase":
            self._register_phases()
            return (
                f"SELECT coalesce(p.phase, '(no step)') AS key, {unit.replace('step', 'd.step')} AS unit, d.dur_ns "
                "FROM device_tasks d LEFT JOIN _phases p ON p.trace_id = d.trace_id AND p.step = d.step"
            )
        if level == "step":
            return f"SELECT 'step ' || step AS key, {unit} AS unit, dur_ns FROM slices WHERE kind = 'step'"
        raise UserError(f"--by {level}: expected one of {', '.join(LEVELS)}")

    def attributed_sql(self) -> str:
        """SQL giving each device task with the framework op it belongs to (traceview.analysis.attribution):
        trace_id, rank, step, dur_ns, core, name, op_id, op_name ('(unattributed)' where no op is known)."""
        if self._owners is None:
            self._owners = create_owners(self.con)
        return f"""
        SELECT d.trace_id, d.rank, d.step, d.dur_ns, d.core, d.name, w.op_id,
               coalesce(o.name, '{UNATTRIBUTED}') AS op_name
        FROM device_tasks d
        LEFT JOIN {self._owners} w ON w.trace_id = d.trace_id AND w.task_id = d.slice_id
        LEFT JOIN slices o ON o.trace_id = w.trace_id AND o.slice_id = w.op_id
        """

    def level_stats(self, level: str, cross: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Per key: count, total, mean, p50; and per (key, unit): total."""
        items = self.items_sql(level, cross)
        self.con.sql(f"CREATE OR REPLACE TEMP TABLE _items AS {items}")
        stats = self.sql(
            "SELECT key, count(*) AS count, CAST(sum(dur_ns) AS BIGINT) AS total_ns, avg(dur_ns) AS mean_ns, "
            "median(dur_ns) AS p50_ns FROM _items GROUP BY key"
        )
        per_unit = self.sql(
            "SELECT key, CAST(unit AS VARCHAR) AS unit, CAST(sum(dur_ns) AS BIGINT) AS total_ns "
            "FROM _items GROUP BY ALL"
        )
        return stats, per_unit

    def _register_task_keys(self, kind: str) -> None:
        """Register `_keys(name, kind, key)` mapping device task names to kernel keys or families."""
        if kind == "kernel":
            names = self.sql("SELECT DISTINCT name, kind FROM device_tasks")
            keys = [normalise_kernel(n) for n in names["name"].to_list()]
            frame = names.with_columns(pl.Series("key", keys, dtype=pl.String))
        else:
            frame = self.sql(f"WITH {family_ctes()} SELECT name, kind, family AS key FROM task_families")
        self.register("_keys", frame.select("name", "kind", "key"))

    def _register_phases(self) -> None:
        """Register `_phases(trace_id, step, phase)` from the core pack's phases query."""
        result = run_query(self.con, find_pack("core").query("phases"))
        if result.frame is None or result.frame.is_empty():
            schema = {"trace_id": pl.String, "step": pl.Int64, "phase": pl.String}
            frame = pl.DataFrame({"trace_id": [], "step": [], "phase": []}, schema=schema)
        else:
            frame = result.frame.select("trace_id", "step", "phase")
        self.register("_phases", frame)
