"""Device time to host code: each device task's launcher on the host, and the framework op it belongs to.

One path for `flame --weight device` (the launcher's stack) and the cross-vendor `diff --by op` (the op):

1. Launch candidates of a task: the host end of a flow into it (Kineto ac2g: the runtime launch; torch_npu
   async_npu: the framework op that queued it) and the runtime launches with its correlation id.
2. A candidate inside a framework op (a cpu_op at or above it on its track) comes first: on Ascend the runtime
   launch runs on the ACL thread under `Dequeue`, away from the op; then the deepest; then a runtime launch; then
   the lowest slice id.
3. A task with no candidate inside an op goes to the framework op with its external id, else with its
   candidate's external id (Kineto `External id`; torch_npu: the op's slice id).
4. Still none: a sibling's launcher, the latest device task with the same correlation id that has one and starts
   no later (else the earliest such): HCCL's SDMA and notify tasks share the connection id of their collective.
5. Still none: a candidate outside any op (a launch from plain Python code) is the launcher, with no op.

A task's op is the outermost cpu_op at or above its launcher, found in at most MAX_OWNER_HOPS parent links.
Every join is keyed (one best runtime launch per correlation id, as-of joins for siblings), so the work grows
with the number of slices and flows, never with their product.
"""

from __future__ import annotations

import duckdb

MAX_OWNER_HOPS = 64  # parent links walked up from a launcher to its outermost framework op
OWNERS = "_task_owners"  # the temp table create_owners() writes

_SLICES = "_attr_slices"
_HOST = "_attr_host"

# The host slices, with only what the walk reads: scanned once instead of once per recursion step.
_SLICES_SQL = """
SELECT trace_id, slice_id, parent_id, depth, kind, correlation, external_id FROM slices WHERE device_type = 'cpu'
"""

# Host slices that can launch device work, each with the outermost cpu_op at or above it (op_id, null if none).
_HOST_SQL = f"""
WITH RECURSIVE
seeds AS (
  SELECT trace_id, slice_id FROM {_SLICES} WHERE kind = 'runtime' AND correlation IS NOT NULL
  UNION
  SELECT f.trace_id, f.src_slice_id FROM flows f JOIN device_tasks t ON t.trace_id = f.trace_id
   AND t.slice_id = f.dst_slice_id
  UNION
  SELECT trace_id, min(slice_id) FROM {_SLICES}
  WHERE kind = 'cpu_op' AND (trace_id, external_id) IN (SELECT trace_id, external_id FROM device_tasks
                                                        UNION SELECT trace_id, external_id FROM {_SLICES}
                                                        WHERE kind <> 'cpu_op')
  GROUP BY trace_id, external_id
),
up(trace_id, host_id, cur, op_id, hops) USING KEY (trace_id, host_id) AS (
  SELECT trace_id, slice_id, slice_id, CAST(NULL AS BIGINT), 0 FROM seeds
  UNION
  SELECT u.trace_id, u.host_id, s.parent_id, CASE WHEN s.kind = 'cpu_op' THEN s.slice_id ELSE u.op_id END,
         u.hops + 1
  FROM up u JOIN {_SLICES} s ON s.trace_id = u.trace_id AND s.slice_id = u.cur
  WHERE u.hops < {MAX_OWNER_HOPS}
)
SELECT u.trace_id, u.host_id, u.op_id, h.depth, h.kind, h.correlation, h.external_id
FROM up u JOIN {_SLICES} h ON h.trace_id = u.trace_id AND h.slice_id = u.host_id
"""

_ORDER = "op_id IS NULL, depth DESC NULLS LAST, kind <> 'runtime', host_id"

# Per device task: the launcher (host_id) and its op, by steps 1-5 of the module docstring.
_OWNERS_SQL = f"""
WITH
tasks AS (SELECT trace_id, slice_id AS task_id, ts_ns, correlation, external_id FROM device_tasks),
launch AS (
  SELECT DISTINCT ON (trace_id, correlation) * FROM {_HOST}
  WHERE kind = 'runtime' AND correlation IS NOT NULL ORDER BY trace_id, correlation, {_ORDER}
),
candidate AS (
  SELECT DISTINCT ON (trace_id, task_id) * FROM (
    SELECT t.trace_id, t.task_id, h.host_id, h.op_id, h.depth, h.kind, h.external_id
    FROM tasks t JOIN flows f ON f.trace_id = t.trace_id AND f.dst_slice_id = t.task_id
    JOIN {_HOST} h ON h.trace_id = f.trace_id AND h.host_id = f.src_slice_id
    UNION ALL
    SELECT t.trace_id, t.task_id, l.host_id, l.op_id, l.depth, l.kind, l.external_id
    FROM tasks t JOIN launch l ON l.trace_id = t.trace_id AND l.correlation = t.correlation
  ) ORDER BY trace_id, task_id, {_ORDER}
),
op_by_external AS (
  SELECT DISTINCT ON (h.trace_id, o.external_id) h.trace_id, o.external_id, h.host_id, h.op_id
  FROM {_HOST} h JOIN {_SLICES} o ON o.trace_id = h.trace_id AND o.slice_id = h.host_id
  WHERE o.kind = 'cpu_op' AND o.external_id IS NOT NULL ORDER BY h.trace_id, o.external_id, h.host_id
),
own AS (
  SELECT t.trace_id, t.task_id, t.ts_ns, t.correlation,
         CASE WHEN c.op_id IS NOT NULL THEN 'launch' WHEN x.host_id IS NOT NULL THEN 'external_id'
              WHEN y.host_id IS NOT NULL THEN 'launch_external_id' END AS via,
         CASE WHEN c.op_id IS NOT NULL THEN c.host_id ELSE coalesce(x.host_id, y.host_id) END AS launcher_id,
         CASE WHEN c.op_id IS NOT NULL THEN c.op_id ELSE coalesce(x.op_id, y.op_id) END AS op_id,
         c.host_id AS candidate_id
  FROM tasks t
  LEFT JOIN candidate c ON c.trace_id = t.trace_id AND c.task_id = t.task_id
  LEFT JOIN op_by_external x ON x.trace_id = t.trace_id AND x.external_id = t.external_id
  LEFT JOIN op_by_external y ON y.trace_id = c.trace_id AND y.external_id = c.external_id
),
resolved AS (
  SELECT DISTINCT ON (trace_id, correlation, ts_ns) trace_id, correlation, ts_ns, launcher_id, op_id FROM own
  WHERE op_id IS NOT NULL AND correlation IS NOT NULL ORDER BY trace_id, correlation, ts_ns, launcher_id
),
earlier AS (
  SELECT o.trace_id, o.task_id, r.launcher_id, r.op_id
  FROM (SELECT * FROM own WHERE op_id IS NULL AND correlation IS NOT NULL) o
  ASOF JOIN resolved r ON r.trace_id = o.trace_id AND r.correlation = o.correlation AND o.ts_ns >= r.ts_ns
),
first_sibling AS (
  SELECT trace_id, correlation, arg_min(launcher_id, (ts_ns, launcher_id)) AS launcher_id,
         arg_min(op_id, (ts_ns, launcher_id)) AS op_id
  FROM resolved GROUP BY trace_id, correlation
)
SELECT o.trace_id, o.task_id,
       CASE WHEN o.op_id IS NOT NULL THEN o.launcher_id
            ELSE coalesce(e.launcher_id, s.launcher_id, o.candidate_id) END AS launcher_id,
       coalesce(o.op_id, e.op_id, s.op_id) AS op_id,
       CASE WHEN o.op_id IS NOT NULL THEN o.via WHEN coalesce(e.op_id, s.op_id) IS NOT NULL THEN 'sibling'
            WHEN o.candidate_id IS NOT NULL THEN 'launch_outside_op' END AS via
FROM own o
LEFT JOIN earlier e ON e.trace_id = o.trace_id AND e.task_id = o.task_id
LEFT JOIN first_sibling s ON s.trace_id = o.trace_id AND s.correlation = o.correlation AND o.op_id IS NULL
"""


def create_owners(con: duckdb.DuckDBPyConnection) -> str:
    """Create the temp table OWNERS over the traces behind `con`: one row per device task, and return its name.

    Columns: trace_id, task_id (the task's slice_id), launcher_id (the host slice it is attributed to, null when
    none is known), op_id (the outermost framework op at or above the launcher, null when none) and via (how it
    was found: launch, external_id, launch_external_id, sibling, launch_outside_op; null when not at all).
    """
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_SLICES} AS {_SLICES_SQL}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_HOST} AS {_HOST_SQL}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {OWNERS} AS {_OWNERS_SQL}")
    return OWNERS
