"""The op tree of both sides (paths of framework ops, annotations and steps) with base and test totals."""

from __future__ import annotations

from traceview.analysis.diff.sides import Side

SEP = " \u203a "  # between the names of a path
TREE_KINDS = "('cpu_op', 'annotation', 'step')"
MAX_DEPTH = 8  # levels below a root
MAX_NODES = 400  # the largest paths kept (their ancestors besides)


def build_op_tree(base: Side, test: Side) -> dict[str, list[int]]:
    """Paths of the op tree with their base and test totals (the largest MAX_NODES, ancestors kept)."""
    b, t = _tree_rows(base), _tree_rows(test)
    paths = sorted(set(b) | set(t), key=lambda p: -max(b.get(p, 0), t.get(p, 0)))[:MAX_NODES]
    keep = set(paths)
    for path in list(keep):  # every kept node needs its ancestors
        parts = path.split(SEP)
        for i in range(1, len(parts)):
            keep.add(SEP.join(parts[:i]))
    return {p: [b.get(p, 0), t.get(p, 0)] for p in sorted(keep)}


def _tree_rows(side: Side) -> dict[str, int]:
    """Total duration per op-tree path (root to node via parent_id), step numbers folded together."""
    rows = side.con.sql(
        f"""
        WITH RECURSIVE t(trace_id, slice_id, path, dur_ns, depth) AS (
          SELECT trace_id, slice_id, regexp_replace(name, '#\\d+$', ''), dur_ns, 0 FROM slices
          WHERE device_type = 'cpu' AND kind IN {TREE_KINDS} AND parent_id IS NULL
          UNION ALL
          SELECT s.trace_id, s.slice_id, t.path || '{SEP}' || regexp_replace(s.name, '#\\d+$', ''), s.dur_ns,
                 t.depth + 1
          FROM t JOIN slices s ON s.trace_id = t.trace_id AND s.parent_id = t.slice_id
          WHERE s.kind IN {TREE_KINDS} AND t.depth < {MAX_DEPTH}
        )
        SELECT path, CAST(sum(dur_ns) AS BIGINT) FROM t GROUP BY path
        """
    ).fetchall()
    return {path: int(total) for path, total in rows}
