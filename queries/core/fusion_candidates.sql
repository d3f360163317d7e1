-- title: Fusion candidates
-- description: Runs of short device tasks (each under max_task_ns) launched back to back on one stream (at most max_gap_ns apart, at least min_run tasks) where the idle gaps between them plus the launch overhead of the tasks after the first (launch_ns: one median launch call each) exceed the work itself, grouped by the framework ops that issued them (kernel -> correlation -> launch call -> its parent op) and the code path above those ops (the op's parent and grandparent). est_saved_ns is what one fused kernel per run would save: per run the larger of the gaps and the launch overhead (when the host is the bottleneck the gaps are those launch calls showing through, so the two are not added).
-- units: saved_pct_of_span=% of device span
-- order: est_saved_ns desc
-- empty: no runs of short device tasks launched back to back
-- param: max_task_ns BIGINT 10000 Tasks shorter than this count as short
-- param: max_gap_ns BIGINT 50000 Largest gap between two tasks of one run
-- param: min_run INTEGER 3 Fewest tasks in a run
-- param: top INTEGER 20 Groups to keep per trace
-- finding: saved_pct_of_span >= 1 => info: rank {rank} device {device_id}: {runs} runs of {tasks_per_run:.1f} short kernels from {ops} ({code_path}) spend {gap_ns:ns} idle and {launch_ns:ns} launching around {work_ns:ns} of work; fusing them would save about {est_saved_ns:ns} ({saved_pct_of_span:.1f}% of the device span)
WITH
-- @include _launches.sql
,
launch_cost AS (
  -- what one launch costs the host: the median launch call (calls that block on a full queue are not overhead)
  SELECT trace_id, median(launch_dur_ns) AS typical_launch_ns FROM launches GROUP BY ALL
),
-- @include _device_timeline.sql
,
tasks AS (
  SELECT trace_id, rank, device_id, stream, slice_id, ts_ns, dur_ns, correlation, stream_prev_end_ns AS prev_end,
         stream_prev_dur_ns AS prev_dur
  FROM device_timeline
),
marked AS (
  SELECT *, CASE WHEN dur_ns < $max_task_ns AND prev_dur < $max_task_ns AND ts_ns - prev_end <= $max_gap_ns
                 THEN 0 ELSE 1 END AS starts_run
  FROM tasks
),
numbered AS (
  SELECT *, sum(starts_run) OVER (PARTITION BY trace_id, device_id, stream ORDER BY ts_ns, dur_ns, slice_id
                                  ROWS UNBOUNDED PRECEDING) AS run_id
  FROM marked
),
short_tasks AS (
  -- the short tasks of runs long enough to count (runs below keeps only those): only they need their ops
  SELECT * FROM numbered WHERE dur_ns < $max_task_ns
  QUALIFY count(*) OVER (PARTITION BY trace_id, device_id, stream, run_id) >= $min_run
),
short_runs AS (
  SELECT t.*, k.name, l.launch_parent_id
  FROM short_tasks t
  LEFT JOIN launches l ON l.trace_id = t.trace_id AND l.correlation = t.correlation
  LEFT JOIN (SELECT trace_id, slice_id, name FROM device_tasks WHERE slice_id IN (SELECT slice_id FROM short_tasks)) k
    ON k.trace_id = t.trace_id AND k.slice_id = t.slice_id
),
launch_ops AS (
  -- the few slices the joins below look up, found with semi-joins (a join's hash table is then built on the
  -- short runs, not on all slices)
  SELECT trace_id, slice_id, name, kind, parent_id FROM slices
  WHERE slice_id IN (SELECT launch_parent_id FROM short_runs)
),
launch_op_parents AS (
  SELECT trace_id, slice_id, name, kind, parent_id FROM slices WHERE slice_id IN (SELECT parent_id FROM launch_ops)
),
issuing_ops AS (
  SELECT * FROM launch_ops
  UNION
  SELECT * FROM launch_op_parents
  UNION
  SELECT trace_id, slice_id, name, kind, parent_id FROM slices
  WHERE slice_id IN (SELECT parent_id FROM launch_op_parents)
),
issued AS (
  -- the op that issued each short task, and the code path above that op (step numbers in step and annotation
  -- names replaced by N, so the same code path in different steps is one group)
  SELECT n.*, op.name AS op,
         concat_ws(' > ', CASE WHEN gp.kind IN ('step', 'annotation') THEN regexp_replace(gp.name, '\d+', 'N', 'g')
                               ELSE gp.name END,
                   CASE WHEN p.kind IN ('step', 'annotation') THEN regexp_replace(p.name, '\d+', 'N', 'g')
                        ELSE p.name END) AS code_path
  FROM short_runs n
  LEFT JOIN issuing_ops op ON op.trace_id = n.trace_id AND op.slice_id = n.launch_parent_id
  LEFT JOIN issuing_ops p ON p.trace_id = op.trace_id AND p.slice_id = op.parent_id
  LEFT JOIN issuing_ops gp ON gp.trace_id = p.trace_id AND gp.slice_id = p.parent_id
),
runs AS (
  SELECT trace_id, any_value(rank) AS rank, device_id, stream, run_id, count(*) AS tasks, min(ts_ns) AS ts_ns,
         CAST(sum(dur_ns) AS BIGINT) AS work_ns,
         CAST(sum(CASE WHEN starts_run = 0 THEN ts_ns - prev_end ELSE 0 END) AS BIGINT) AS gap_ns,
         CAST((count(*) - 1) * any_value(typical_launch_ns) AS BIGINT) AS launch_ns,
         array_to_string(list_sort(list_distinct(list(coalesce(op, '(no host op)')))), ', ') AS ops,
         coalesce(nullif(array_to_string(list_sort(list_distinct(list(code_path))), ' | '), ''), '(top level)')
           AS code_path,
         list_sort(list_distinct(list(name))) AS kernels
  FROM issued JOIN launch_cost USING (trace_id)
  GROUP BY trace_id, device_id, stream, run_id
  HAVING count(*) >= $min_run
),
spans AS (
  SELECT trace_id, device_id, max(ts_ns + dur_ns) - min(ts_ns) AS span_ns FROM device_tasks GROUP BY ALL
),
candidates AS (
  SELECT r.trace_id, any_value(r.rank) AS rank, r.device_id, r.ops, r.code_path, count(*) AS runs,
         CAST(sum(r.tasks) AS BIGINT) AS tasks, avg(r.tasks) AS tasks_per_run,
         CAST(sum(r.work_ns) AS BIGINT) AS work_ns,
         CAST(sum(r.gap_ns) AS BIGINT) AS gap_ns, CAST(sum(r.launch_ns) AS BIGINT) AS launch_ns,
         CAST(sum(greatest(r.gap_ns, r.launch_ns)) AS BIGINT) AS est_saved_ns, min(r.ts_ns) AS first_ts_ns,
         list_sort(list_distinct(flatten(list(r.kernels))))[1:5] AS kernels
  FROM runs r
  WHERE r.gap_ns + r.launch_ns > r.work_ns
  GROUP BY r.trace_id, r.device_id, r.ops, r.code_path
)
SELECT c.trace_id, c.rank, c.device_id, c.ops, c.code_path, c.runs, c.tasks, c.tasks_per_run, c.work_ns, c.gap_ns,
       c.launch_ns, c.est_saved_ns, 100.0 * c.est_saved_ns / nullif(s.span_ns, 0) AS saved_pct_of_span, c.first_ts_ns,
       c.kernels
FROM candidates c JOIN spans s ON s.trace_id = c.trace_id AND s.device_id IS NOT DISTINCT FROM c.device_id
QUALIFY row_number() OVER (PARTITION BY c.trace_id ORDER BY c.est_saved_ns DESC) <= $top
ORDER BY c.trace_id, c.est_saved_ns DESC
