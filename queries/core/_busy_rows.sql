-- Shared by busy_breakdown, slow_rank and comm_overlap: per rank and device, where the device's time went, on the
-- device timeline: a sweep over the boundaries of all its tasks (overlapping tasks count once), cut into each
-- step's device window (its first task's start to the next window's start), the time outside the windows and
-- the whole device (scope 'step' / 'outside steps' / 'device'). Compute and communication follow the family
-- rules (family comm is communication), memcpy/memset are copies. It reads device_tasks: the sweep sorts on its
-- own, so it needs none of device_timeline's ordering windows. A query includes it as one of its CTEs.
-- materialize: busy_rows
-- @include _family_rules.sql
,
bb_named_comm AS (
  -- bb_tasks of family comm by their name whose kind is not `comm` (DeepEP, NVSHMEM, custom all-reduce, ...): few
  SELECT d.trace_id, d.slice_id FROM device_tasks d
  SEMI JOIN (SELECT kind, name FROM task_families WHERE family = 'comm' AND kind NOT IN ('comm', 'memcpy', 'memset')) f
    ON f.kind = d.kind AND f.name = d.name
),
bb_tasks AS (
  SELECT d.trace_id, d.rank, d.device_id, d.step, d.ts_ns AS s, d.ts_ns + d.dur_ns AS e,
         CASE WHEN d.kind IN ('memcpy', 'memset') THEN 'mem' WHEN d.kind = 'comm' OR c.slice_id IS NOT NULL THEN 'comm'
              ELSE 'compute' END AS cls
  FROM device_tasks d
  LEFT JOIN bb_named_comm c ON c.trace_id = d.trace_id AND c.slice_id = d.slice_id
),
bb_devices AS (
  SELECT trace_id, rank, device_id, min(s) AS start_ns, max(e) AS end_ns, max(e) FILTER (WHERE step IS NOT NULL)
         AS stepped_end_ns
  FROM bb_tasks GROUP BY ALL
),
bb_windows AS (
  -- each step's device window: its first task's start up to the next window's start; the last ends with the
  -- last task of any step. `seq` orders bb_windows that start at the same time.
  SELECT w.*, coalesce(lead(w.start_ns) OVER o, d.stepped_end_ns) AS end_ns, row_number() OVER o AS seq
  FROM (SELECT trace_id, rank, device_id, step, min(s) AS start_ns FROM bb_tasks WHERE step IS NOT NULL GROUP BY ALL) w
  JOIN bb_devices d USING (trace_id, rank, device_id)
  WINDOW o AS (PARTITION BY w.trace_id, w.rank, w.device_id ORDER BY w.start_ns, w.step)
),
bb_edges AS (
  -- task starts and ends, plus markers: a window's start opens it, the last window's end (and the device's first
  -- task) open 'outside steps'; wseq orders markers at the same time (the closing 'outside' after any window). A marker carries {'step': ...}; an edge carries NULL and takes the last marker.
  SELECT trace_id, rank, device_id, s AS t, 1 AS seq, (cls = 'compute')::INT AS dc, (cls = 'comm')::INT AS dm,
         (cls = 'mem')::INT AS dy, NULL AS marker, 0 AS wseq
  FROM bb_tasks
  UNION ALL
  SELECT trace_id, rank, device_id, e, 1, -(cls = 'compute')::INT, -(cls = 'comm')::INT, -(cls = 'mem')::INT, NULL, 0
  FROM bb_tasks
  UNION ALL
  SELECT trace_id, rank, device_id, start_ns, 0, 0, 0, 0, {'step': step}, seq FROM bb_windows
  UNION ALL
  SELECT trace_id, rank, device_id, stepped_end_ns, 0, 0, 0, 0, {'step': NULL}, 9223372036854775807 FROM bb_devices
  WHERE stepped_end_ns IS NOT NULL
  UNION ALL
  SELECT trace_id, rank, device_id, start_ns, -1, 0, 0, 0, {'step': NULL}, 0 FROM bb_devices
),
bb_segments AS (
  -- One global order: every task adds and removes itself within its (trace, rank, device), so the running sums
  -- are those of the device, and each device's rows start with its own 'outside' marker. The last row of a
  -- device has every count at zero, so its length (to the next device) is never summed in the FILTERs below.
  -- Markers sort before bb_edges at the same time, bb_windows by their seq; of rows at the same time all but the
  -- last get a length of zero.
  SELECT trace_id, rank, device_id, t,
         last_value(marker IGNORE NULLS) OVER w AS win,
         sum(dc) OVER w AS active_compute, sum(dm) OVER w AS active_comm, sum(dy) OVER w AS active_mem,
         lead(t) OVER w - t AS len
  FROM bb_edges
  WINDOW w AS (ORDER BY trace_id, rank, device_id, t, seq, wseq ROWS UNBOUNDED PRECEDING)
),
bb_parts AS (
  SELECT trace_id, rank, device_id, win.step AS step,
         CASE WHEN win.step IS NULL THEN 'outside steps' ELSE 'step' END AS scope,
         CAST(coalesce(sum(len) FILTER (WHERE active_compute > 0), 0) AS BIGINT) AS compute_ns,
         CAST(coalesce(sum(len) FILTER (WHERE active_comm > 0), 0) AS BIGINT) AS comm_ns,
         CAST(coalesce(sum(len) FILTER (WHERE active_comm > 0 AND active_compute = 0), 0) AS BIGINT)
           AS comm_not_overlapped_ns,
         CAST(coalesce(sum(len) FILTER (WHERE active_comm > 0 AND active_compute > 0), 0) AS BIGINT) AS overlapped_ns,
         CAST(coalesce(sum(len) FILTER (WHERE active_mem > 0 AND active_compute = 0 AND active_comm = 0), 0) AS BIGINT)
           AS memcpy_ns,
         CAST(coalesce(sum(len) FILTER (WHERE active_mem > 0 OR active_compute > 0 OR active_comm > 0), 0) AS BIGINT)
           AS busy_ns,
         min(t) FILTER (WHERE active_compute > 0 OR active_comm > 0) AS kernel_start_ns,
         max(t + len) FILTER (WHERE active_compute > 0 OR active_comm > 0) AS kernel_end_ns
  FROM bb_segments GROUP BY ALL
),
bb_spans AS (
  SELECT p.*, CAST(CASE WHEN p.scope = 'step' THEN w.end_ns - w.start_ns
                   ELSE d.end_ns - d.start_ns
                        - coalesce((SELECT sum(x.end_ns - x.start_ns) FROM bb_windows x WHERE x.trace_id = p.trace_id
                                      AND x.rank IS NOT DISTINCT FROM p.rank
                                      AND x.device_id IS NOT DISTINCT FROM p.device_id), 0) END AS BIGINT) AS span_ns
  FROM bb_parts p
  JOIN bb_devices d ON d.trace_id = p.trace_id AND d.rank IS NOT DISTINCT FROM p.rank
    AND d.device_id IS NOT DISTINCT FROM p.device_id
  LEFT JOIN bb_windows w ON w.trace_id = p.trace_id AND w.rank IS NOT DISTINCT FROM p.rank
    AND w.device_id IS NOT DISTINCT FROM p.device_id AND w.step = p.step
),
bb_device_rows AS (
  -- the whole device: the sums of its step and outside rows (they tile the device span)
  SELECT trace_id, rank, device_id, NULL::BIGINT AS step, 'device' AS scope,
         CAST(sum(compute_ns) AS BIGINT) AS compute_ns, CAST(sum(comm_ns) AS BIGINT) AS comm_ns,
         CAST(sum(comm_not_overlapped_ns) AS BIGINT) AS comm_not_overlapped_ns,
         CAST(sum(overlapped_ns) AS BIGINT) AS overlapped_ns, CAST(sum(memcpy_ns) AS BIGINT) AS memcpy_ns,
         CAST(sum(busy_ns) AS BIGINT) AS busy_ns, min(kernel_start_ns) AS kernel_start_ns,
         max(kernel_end_ns) AS kernel_end_ns, CAST(sum(span_ns) AS BIGINT) AS span_ns
  FROM bb_spans GROUP BY ALL
),
bb_all_rows AS (
  -- a device without steps has only its device row
  SELECT s.* FROM bb_spans s WHERE s.scope = 'step' OR (s.span_ns > 0 AND EXISTS (
    SELECT 1 FROM bb_windows x WHERE x.trace_id = s.trace_id AND x.rank IS NOT DISTINCT FROM s.rank
      AND x.device_id IS NOT DISTINCT FROM s.device_id))
  UNION ALL BY NAME
  SELECT * FROM bb_device_rows
),
busy_rows AS (
  SELECT r.trace_id, r.rank, r.device_id, r.step, r.scope, r.span_ns, r.compute_ns, r.comm_ns, r.comm_not_overlapped_ns,
         r.overlapped_ns, r.memcpy_ns, r.span_ns - r.busy_ns AS idle_ns,
         coalesce(r.kernel_end_ns - r.kernel_start_ns, 0) - r.compute_ns - r.comm_not_overlapped_ns AS free_ns,
         100.0 * (r.span_ns - r.busy_ns) / nullif(r.span_ns, 0) AS idle_pct,
         100.0 * r.comm_not_overlapped_ns / nullif(r.span_ns, 0) AS comm_not_overlapped_pct,
         (SELECT count(*) FROM bb_windows x WHERE x.trace_id = r.trace_id AND x.rank IS NOT DISTINCT FROM r.rank
            AND x.device_id IS NOT DISTINCT FROM r.device_id) AS steps
  FROM bb_all_rows r
)
