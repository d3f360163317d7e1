"""The flame graph: the host call tree (from slice nesting) as folded stacks, and its icicle tree.

Slices that start inside their parent but end after it (overlaps_parent, e.g. ProfilerStep#N opened inside a
short record_function call) are re-parented to their deepest ancestor that contains them, or become a root of
their thread when none does. Such a slice then overlaps an earlier sibling (the slice it started in, or one of
that slice's ancestors): its start is clipped to the end of the earlier siblings, and its children with it, so
siblings never overlap and every instant of a thread is counted once. The folded wall values then add up to the
union of the thread's host slices (per pid, tid); the clipped-off start is time of the earlier sibling.

Weights:
  wall    a frame's value is its duration (clipped as above, children to their parent, and to the step with
          --step); the folded value of a stack is the wall time spent there and not in a child, so the folded
          values add up to the time covered by host slices, thread by thread.
  self    the model's self_ns per slice, summed per stack.
  device  every device task's duration, attributed to the host stack that launched it (one path with the
          cross-vendor diff: traceview.analysis.attribution); the task's own name is the leaf. Tasks with no
          known launcher sit under "[no host launcher]".

The aggregation runs in DuckDB: a recursive walk down parent_id (re-parented as above; the enclosing slice is
found with numpy, parsers.nesting.nearest_earlier_reaching) builds each slice's stack as a string of name ids,
then rows are grouped by stack. Names are normalised (hex addresses, long digit ids, ProfilerStep#N) so repeated
steps merge; a slice without a name is "(no name)".
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from traceview.analysis.attribution import create_owners
from traceview.engine import connect, resolve_store
from traceview.errors import UserError
from traceview.parsers.nesting import nearest_earlier_reaching

NO_LAUNCHER = "[no host launcher]"
DEVICE_PREFIX = "[device] "
OTHER = "other"
NO_NAME = "(no name)"  # the frame of a slice without a name
MAX_NAME = 160
DEFAULT_MIN_SHARE = 0.001


class Weight(enum.StrEnum):
    """What a frame's value measures."""

    wall = "wall"
    self = "self"
    device = "device"


def _norm(expr: str) -> str:
    """SQL: a slice name normalised so that repeated steps and objects merge (no ';' left, for folded output)."""
    out = f"replace(coalesce({expr}, ''), ';', ':')"
    out = f"regexp_replace({out}, '\\s+', ' ', 'g')"
    out = f"regexp_replace({out}, '0x[0-9a-fA-F]+', '0x?', 'g')"
    out = f"regexp_replace({out}, '^ProfilerStep#[0-9]+', 'ProfilerStep#*')"
    out = f"regexp_replace({out}, '[0-9]{{5,}}', '#', 'g')"
    return f"coalesce(nullif(left(trim({out}), {MAX_NAME}), ''), '{NO_NAME}')"


HOST_RAW_SQL = f"""
SELECT trace_id, slice_id, parent_id, pid, tid, ts_ns, ts_ns + dur_ns AS end_ns, self_ns, step, depth, kind,
       coalesce(overlaps_parent, false) AS overlaps_parent, {_norm("name")} AS norm
FROM slices WHERE device_type = 'cpu' AND dur_ns IS NOT NULL AND dur_ns >= 0
"""

# The threads with a slice that outlasts its parent, their slices in nesting order (parsers.nesting: start, longer
# first, slice id).
OUTLASTING_THREADS_SQL = """
WITH t AS (
  SELECT trace_id, slice_id, ts_ns, end_ns, overlaps_parent, dense_rank() OVER (ORDER BY trace_id, pid, tid) AS track,
         bool_or(overlaps_parent) OVER (PARTITION BY trace_id, pid, tid) AS has_outlasting
  FROM _flame_raw
)
SELECT row_number() OVER (ORDER BY track, ts_ns, end_ns DESC, slice_id) - 1 AS pos, track, trace_id, slice_id, end_ns,
       overlaps_parent
FROM t WHERE has_outlasting
"""

HOST_SQL = """
WITH names AS (SELECT norm, CAST(row_number() OVER (ORDER BY norm) - 1 AS VARCHAR) AS nid
               FROM (SELECT DISTINCT norm FROM _flame_raw)),
reparented AS (
  SELECT h.*, CASE WHEN h.overlaps_parent THEN k.container_id WHEN p.slice_id IS NOT NULL THEN h.parent_id END
              AS tree_parent
  FROM _flame_raw h LEFT JOIN _flame_containers k ON k.trace_id = h.trace_id AND k.slice_id = h.slice_id
  LEFT JOIN _flame_raw p ON p.trace_id = h.trace_id AND p.slice_id = h.parent_id
)
SELECT r.*, n.nid, r.tree_parent IS NULL AS is_root,
       -- a slice starts where the earlier siblings (roots: of its thread) end, so siblings never overlap
       greatest(r.ts_ns, coalesce(max(r.end_ns) OVER (
         PARTITION BY r.trace_id, r.tree_parent, CASE WHEN r.tree_parent IS NULL THEN r.pid END,
                      CASE WHEN r.tree_parent IS NULL THEN r.tid END
         ORDER BY r.ts_ns, r.end_ns DESC, r.slice_id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), r.ts_ns))
         AS start_ns
FROM reparented r JOIN names n USING (norm)
"""


def _find_containers(con: duckdb.DuckDBPyConnection) -> None:
    """Table _flame_containers: per host slice that outlasts its parent, the innermost slice of its thread that
    contains it whole (container_id null where none does)."""
    if not con.sql("SELECT count(*) FROM (SELECT 1 FROM _flame_raw WHERE overlaps_parent LIMIT 1)").fetchall()[0][0]:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _flame_containers AS"
            " SELECT trace_id, slice_id, slice_id AS container_id FROM _flame_raw LIMIT 0"
        )
        return
    con.execute("CREATE OR REPLACE TEMP TABLE _flame_order AS " + OUTLASTING_THREADS_SQL)
    columns = con.sql("SELECT track, end_ns FROM _flame_order ORDER BY pos").fetchnumpy()
    track, ends = np.asarray(columns["track"], dtype=np.int64), np.asarray(columns["end_ns"], dtype=np.int64)
    found = nearest_earlier_reaching(ends)
    # the nearest such slice on an earlier thread means none on its own
    same_thread = (found >= 0) & (track[np.maximum(found, 0)] == track)
    container_pos = np.where(same_thread, found, -1)
    positions = pa.table({"pos": np.arange(len(ends), dtype=np.int64), "container_pos": container_pos})
    con.register("_flame_found", positions)
    try:
        con.execute("""
            CREATE OR REPLACE TEMP TABLE _flame_containers AS
            SELECT o.trace_id, o.slice_id, c.slice_id AS container_id
            FROM _flame_order o JOIN _flame_found f USING (pos) LEFT JOIN _flame_order c ON c.pos = f.container_pos
            WHERE o.overlaps_parent""")
    finally:
        con.unregister("_flame_found")


MAX_STEP_RANGES = 6  # an unknown --step lists at most this many runs of steps (the first and the last ones)


class UnknownStepError(UserError):
    """A step the traces do not have; `available` says which they have."""

    def __init__(self, step: int, available: str) -> None:
        super().__init__(f"step {step}: {available}")
        self.step = step
        self.available = available


def _step_ranges(steps: list[int]) -> str:
    """Ascending step numbers as runs: `1-4, 7, 9-12` (the middle elided when there are many runs)."""
    runs: list[list[int]] = []
    for step in steps:
        if runs and step == runs[-1][1] + 1:
            runs[-1][1] = step
        else:
            runs.append([step, step])
    text = [str(a) if a == b else f"{a}-{b}" for a, b in runs]
    if len(text) > MAX_STEP_RANGES:
        text = text[: MAX_STEP_RANGES - 2] + ["..."] + text[-1:]
    return ", ".join(text)


def check_step(con: duckdb.DuckDBPyConnection, step: int) -> None:
    """UnknownStepError unless some slice of the traces behind `con` falls in step `step`."""
    rows = con.sql("SELECT DISTINCT step FROM slices WHERE step IS NOT NULL ORDER BY step").fetchall()
    steps = [int(row[0]) for row in rows]
    if step in steps:
        return
    several = con.sql("SELECT count(*) FROM traces").fetchall()[0][0] > 1
    subject = "the traces have" if several else "the trace has"
    available = f"{subject} steps {_step_ranges(steps)}" if steps else f"{subject} no steps (no ProfilerStep#N)"
    raise UnknownStepError(step, available)


def _clamp(value: str, lo: str, hi: str) -> str:
    return f"least(greatest({value}, {lo}), {hi})"


def _tree_sql(window: bool) -> str:
    """The host tree: per host slice its stack (name ids joined by '/'), its parent's stack, clipped interval.

    Every slice under a kept root is kept, with an empty interval where its time went to an earlier sibling, so
    that self and device time keep their stacks; with a step window, slices outside it are left out.
    """
    lo, hi = ("w.lo", "w.hi") if window else ("h.ts_ns", "h.end_ns")
    root_s, child_s = _clamp("h.start_ns", lo, hi), _clamp("c.start_ns", "t.s", "t.e")
    in_window = "c.ts_ns <= w.hi AND c.end_ns >= w.lo" if window else "true"
    win = "JOIN win w ON w.trace_id = {}.trace_id" if window else ""
    return f"""
    tree AS (
      SELECT h.trace_id, h.slice_id, {root_s} AS s, {_clamp("h.end_ns", root_s, hi)} AS e, h.nid AS path,
             CAST(NULL AS VARCHAR) AS parent_path
      FROM _flame_host h {win.format("h")}
      WHERE h.is_root AND h.ts_ns <= {hi} AND h.end_ns >= {lo}
      UNION ALL
      SELECT c.trace_id, c.slice_id, {child_s}, {_clamp("c.end_ns", child_s, "t.e")}, t.path || '/' || c.nid, t.path
      FROM tree t JOIN _flame_host c ON c.trace_id = t.trace_id AND c.tree_parent = t.slice_id {win.format("c")}
      WHERE {in_window}
    )"""


@dataclass
class FlameResult:
    """Folded stacks (tuple of frame names -> ns) for one weight, and the totals behind them."""

    weight: Weight
    stacks: dict[tuple[str, ...], int]
    total_ns: int
    step: int | None = None
    info: dict[str, int] = field(default_factory=dict)

    def folded(self) -> str:
        """Brendan Gregg's folded format: `frame;frame;frame value`, one stack a line, values in ns."""
        lines = [";".join(stack) + f" {value}" for stack, value in sorted(self.stacks.items()) if value > 0]
        return "\n".join(lines) + ("\n" if lines else "")

    def to_json(self) -> dict[str, Any]:
        """The stacks (root first, ns) and totals as a JSON-able dict."""
        stacks = [{"frames": list(stack), "ns": value} for stack, value in sorted(self.stacks.items())]
        return {
            "weight": self.weight.value,
            "step": self.step,
            "total_ns": self.total_ns,
            "info": self.info,
            "stacks": stacks,
        }

    def empty_reason(self) -> str | None:
        """Why there are no stacks (None when there are)."""
        if self.stacks:
            return None
        if self.weight is Weight.device:
            reason = (
                "the trace has no device tasks (kernels, copies, communication), so there is no device time"
                " to attribute; try --weight wall"
            )
        else:
            reason = "the trace has no host slices to build a call tree from"
        return reason + (f" in step {self.step}" if self.step is not None else "")


def _decode(rows: list[tuple[str, int]], names: dict[str, str]) -> dict[tuple[str, ...], int]:
    stacks: dict[tuple[str, ...], int] = {}
    for path, value in rows:
        if value is None:
            continue
        frames = tuple(names[i] for i in path.split("/")) if path else ()
        stacks[frames] = stacks.get(frames, 0) + int(value)
    return stacks


def _step_window_sql(step: int) -> str:
    return f"""
    win AS (
      SELECT trace_id, coalesce(min(ts_ns) FILTER (WHERE kind = 'step'), min(ts_ns)) AS lo,
             coalesce(max(ts_ns + dur_ns) FILTER (WHERE kind = 'step'), max(ts_ns + dur_ns)) AS hi
      FROM slices WHERE device_type = 'cpu' AND step = {int(step)} GROUP BY trace_id
    ),"""


def compute_flame(
    con: duckdb.DuckDBPyConnection, weight: Weight | str = Weight.wall, step: int | None = None
) -> FlameResult:
    """Folded stacks of the traces behind `con` (a connection from traceview.engine.connect), of step `step` only
    where given (UnknownStepError when the traces do not have it)."""
    weight = Weight(weight)
    if step is not None:
        check_step(con, step)
    window = step is not None and weight is Weight.wall
    prefix = "WITH RECURSIVE " + (_step_window_sql(step) if window and step is not None else "") + _tree_sql(window)
    step_filter = "" if step is None else f" AND h.step = {int(step)}"
    con.execute("CREATE OR REPLACE TEMP TABLE _flame_raw AS " + HOST_RAW_SQL)
    _find_containers(con)
    con.execute("CREATE OR REPLACE TEMP TABLE _flame_host AS " + HOST_SQL)
    con.execute("CREATE OR REPLACE TEMP TABLE _flame_tree AS " + prefix + " SELECT * FROM tree")
    names = dict(con.sql("SELECT DISTINCT nid, norm FROM _flame_host").fetchall())
    if weight is Weight.wall:
        rows = con.sql("""
            WITH own AS (SELECT path, parent_path, e - s AS ns FROM _flame_tree)
            SELECT path, CAST(sum(ns) AS BIGINT) FROM (
              SELECT path, ns FROM own UNION ALL SELECT parent_path, -ns FROM own WHERE parent_path IS NOT NULL)
            GROUP BY path""").fetchall()
        total = con.sql(
            "SELECT CAST(coalesce(sum(e - s), 0) AS BIGINT) FROM _flame_tree WHERE parent_path IS NULL"
        ).fetchall()[0][0]
        stacks = _decode(rows, names)
        negative = {k: v for k, v in stacks.items() if v < 0}
        if negative:  # cannot happen with clipped, non-overlapping children; guard the invariant
            raise UserError(f"flame: {len(negative)} stacks with negative self time (overlapping slices)")
        return FlameResult(weight, stacks, int(total), step)
    if weight is Weight.self:
        rows = con.sql(f"""
            SELECT t.path, CAST(sum(h.self_ns) AS BIGINT)
            FROM _flame_tree t JOIN _flame_host h ON h.trace_id = t.trace_id AND h.slice_id = t.slice_id
            WHERE h.self_ns IS NOT NULL{step_filter}
            GROUP BY t.path""").fetchall()
        stacks = _decode(rows, names)
        return FlameResult(weight, stacks, sum(stacks.values()), step)
    task_filter = "" if step is None else f" AND d.step = {int(step)}"
    owners = create_owners(con)
    rows = con.sql(f"""
        SELECT t.path, {_norm("d.name")} AS leaf, CAST(sum(d.dur_ns) AS BIGINT)
        FROM device_tasks d
        LEFT JOIN {owners} w ON w.trace_id = d.trace_id AND w.task_id = d.slice_id
        LEFT JOIN _flame_tree t ON t.trace_id = w.trace_id AND t.slice_id = w.launcher_id
        WHERE d.dur_ns IS NOT NULL{task_filter}
        GROUP BY ALL""").fetchall()
    stacks = {}
    known = unknown = 0
    for path, leaf, value in rows:
        base = tuple(names[i] for i in path.split("/")) if path is not None else (NO_LAUNCHER,)
        if path is None:
            unknown += int(value)
        else:
            known += int(value)
        key = base + (DEVICE_PREFIX + leaf,)
        stacks[key] = stacks.get(key, 0) + int(value)
    return FlameResult(weight, stacks, known + unknown, step, {"attributed_ns": known, "unattributed_ns": unknown})


def has_device_tasks(con: duckdb.DuckDBPyConnection) -> bool:
    """True when the traces record device work."""
    return bool(con.sql("SELECT count(*) FROM (SELECT 1 FROM device_tasks LIMIT 1)").fetchall()[0][0])


@dataclass
class FlameTree:
    """Icicle nodes: parallel lists as plotly wants them (values are inclusive, in ns)."""

    ids: list[str]
    labels: list[str]
    parents: list[str]
    values: list[int]


def build_tree(result: FlameResult, min_share: float = DEFAULT_MIN_SHARE) -> FlameTree:
    """Merge stacks into a tree; frames under min_share of the total are rolled into one 'other' per parent."""
    root: dict = {"children": {}, "value": 0}
    for stack, value in result.stacks.items():
        if value <= 0:
            continue
        node = root
        node["value"] += value
        for frame in stack:
            node = node["children"].setdefault(frame, {"children": {}, "value": 0})
            node["value"] += value
    threshold = max(1, result.total_ns) * min_share
    tree = FlameTree([], [], [], [])

    def add(label: str, value: int, parent: str) -> str:
        node_id = f"n{len(tree.ids)}"
        tree.ids.append(node_id)
        tree.labels.append(label)
        tree.parents.append(parent)
        tree.values.append(int(value))
        return node_id

    pending: list[tuple[dict, str, str]] = []

    # iterate explicitly: deep trees exceed Python's recursion limit
    def visit(children: dict, parent: str) -> None:
        small = 0
        for name, child in sorted(children.items(), key=lambda kv: -kv[1]["value"]):
            if child["value"] < threshold:
                small += child["value"]
                continue
            pending.append((child, name, parent))
        if small:
            add(OTHER, small, parent)

    visit(root["children"], "")
    while pending:
        child, name, parent = pending.pop()
        node_id = add(name, child["value"], parent)
        visit(child["children"], node_id)
    return tree


def run_flame(
    targets: list[Path], weight: Weight | str = Weight.wall, step: int | None = None, cache_dir: Path | None = None
) -> FlameResult:
    """Open TARGETS (trace files, dumps or stores) and compute their flame graph."""
    stores = [resolve_store(Path(t), Path(cache_dir) if cache_dir else None) for t in targets]
    con = connect(stores)
    try:
        return compute_flame(con, weight, step)
    finally:
        con.close()
