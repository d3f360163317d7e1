-- title: Spikes
-- description: Steps, device tasks and framework operators whose duration exceeds multiple times their median. Steps are compared with the steps of the same phase (see phases; prefill and mixed steps by time per token, median_ns is then the median time per token times the step's tokens), and explained by the ops whose time (host self time plus the device time of the kernels they launched) grew the most against their median over those steps, and by the largest device gap attributed to the step (idle time before one of its tasks, counted from the end of all earlier work on the device, so a stall before the step's first kernel counts). Device tasks are compared with tasks of the same name launched by the same op with the same input shapes; host ops with the same op and input shapes (self time).
-- units: gap_start_ns=ts
-- order: dur_ns desc
-- empty: no step, device task or operator took more than `multiple` times the median of its group
-- param: multiple DOUBLE 3 A duration above this many times the median is a spike
-- param: min_count INTEGER 3 Compare only within groups of at least this many members
-- param: min_excess_ns BIGINT 10000 Ignore task and op spikes that exceed their median by less than this
-- param: top INTEGER 50 Rows to keep per trace and level
-- finding: level = 'step' => warning: rank {rank} step {step} ({phase}) took {dur_ns:ns}, {ratio:.1f}x the median of its phase ({median_ns:ns})[; largest device gap {gap_ns:ns}][; grew most: {grown_ops}]
-- finding: level = 'device' AND dur_ns - median_ns >= 1000000 => info: rank {rank}[ step {step}]: {name}[ (launched by {op})] took {dur_ns:ns}, {ratio:.1f}x its median of {median_ns:ns}
-- finding: level = 'host' AND dur_ns - median_ns >= 1000000 => info: rank {rank}[ step {step}]: host op {name} took {dur_ns:ns}, {ratio:.1f}x its median of {median_ns:ns} with the same input shapes
WITH RECURSIVE
-- @include _step_model.sql
,
-- @include _device_timeline.sql
,
step_scale AS (
  -- prefill and mixed steps scale with their tokens: compare their time per token
  SELECT *, end_ns - ts_ns AS dur_ns,
         CASE WHEN phase IN ('prefill', 'mixed') AND tokens > 0 THEN tokens ELSE 1 END AS scale
  FROM step_model
),
step_spikes AS (
  SELECT trace_id, rank, step, phase, label, ts_ns, dur_ns,
         scale * median(dur_ns / scale) OVER (PARTITION BY trace_id, phase) AS median_ns,
         count(*) OVER (PARTITION BY trace_id, phase) AS group_size
  FROM step_scale
),
-- framework ops in their steps
stepped_ops AS MATERIALIZED (
  SELECT o.trace_id, w.step, o.name, o.ts_ns, o.self_ns AS dur_ns, o.input_dims
  FROM (SELECT o.*, o.ts_ns // s.width AS bucket FROM ops o, slot_width s) o
  JOIN window_slots w ON w.trace_id = o.trace_id AND w.bucket = o.bucket AND o.ts_ns >= w.cut_ns AND o.ts_ns < w.next_ns
),
host_time AS (
  SELECT trace_id, step, name, dur_ns AS t FROM stepped_ops
),
task_ops AS MATERIALIZED (
  -- each device task with the framework op that launched it (looked up with a semi-join: the join's hash table
  -- is built on those ops only)
  SELECT t.trace_id, t.step, t.name, t.ts_ns, t.dur_ns, p.name AS op, coalesce(p.input_dims, t.input_dims) AS input_dims
  FROM step_tasks t
  LEFT JOIN (SELECT trace_id, slice_id, name, input_dims FROM slices
             WHERE slice_id IN (SELECT launch_parent_id FROM step_tasks)) p
    ON p.trace_id = t.trace_id AND p.slice_id = t.launch_parent_id
),
device_time AS (
  SELECT trace_id, step, coalesce(op, name) AS name, dur_ns AS t FROM task_ops
),
op_time AS (
  SELECT trace_id, step, name, sum(t) AS t
  FROM (SELECT * FROM host_time UNION ALL SELECT * FROM device_time)
  GROUP BY ALL
),
op_grid AS (
  -- every op seen in a phase, in every step of that phase (absent: 0)
  SELECT s.trace_id, s.step, s.phase, n.name, coalesce(o.t, 0) AS t
  FROM step_spikes s
  JOIN (SELECT DISTINCT o.trace_id, s.phase, o.name FROM op_time o
        JOIN step_spikes s ON s.trace_id = o.trace_id AND s.step IS NOT DISTINCT FROM o.step) n
    ON n.trace_id = s.trace_id AND n.phase = s.phase
  LEFT JOIN op_time o ON o.trace_id = s.trace_id AND o.step IS NOT DISTINCT FROM s.step AND o.name = n.name
),
op_growth AS (
  SELECT trace_id, step, name, t - median(t) OVER (PARTITION BY trace_id, phase, name) AS growth_ns
  FROM op_grid
),
grown AS (
  SELECT trace_id, step,
         string_agg(name || ' +' || CAST(CAST(growth_ns AS BIGINT) AS VARCHAR) || ' ns', '; ' ORDER BY growth_ns DESC)
           AS grown_ops
  FROM (SELECT * FROM op_growth WHERE growth_ns > 0
        QUALIFY row_number() OVER (PARTITION BY trace_id, step ORDER BY growth_ns DESC) <= 3)
  GROUP BY ALL
),
device_gaps AS (
  -- idle time before each task since all earlier work on the device ended, charged to the task's step
  SELECT t.trace_id, t.step, t.name, t.ts_ns, t.ts_ns - d.device_reach_ns AS gap_ns, d.device_reach_ns AS gap_start_ns
  FROM (SELECT trace_id, slice_id, device_reach_ns FROM device_timeline WHERE ts_ns > device_reach_ns) d
  JOIN step_tasks t ON t.trace_id = d.trace_id AND t.slice_id = d.slice_id
),
largest_gap AS (
  SELECT trace_id, step, max(gap_ns) AS gap_ns, arg_max(gap_start_ns, gap_ns) AS gap_start_ns,
         arg_max(name, gap_ns) AS gap_before_task
  FROM device_gaps GROUP BY ALL
),
step_rows AS (
  SELECT s.trace_id, s.rank, 'step' AS level, s.step, s.phase, coalesce(s.label, 'step ' || s.step) AS name,
         CAST(NULL AS VARCHAR) AS op, CAST(NULL AS VARCHAR) AS input_dims, s.ts_ns, s.dur_ns, s.median_ns,
         s.dur_ns / nullif(s.median_ns, 0) AS ratio, s.group_size, g.grown_ops, l.gap_ns, l.gap_start_ns,
         l.gap_before_task
  FROM step_spikes s
  LEFT JOIN grown g ON g.trace_id = s.trace_id AND g.step IS NOT DISTINCT FROM s.step
  LEFT JOIN largest_gap l ON l.trace_id = s.trace_id AND l.step IS NOT DISTINCT FROM s.step
  WHERE s.group_size >= $min_count AND s.dur_ns > $multiple * s.median_ns
),
task_medians AS (
  -- same task name, issuing op and shapes (the op's, else the task's own: Ascend kernels carry theirs)
  SELECT trace_id, name, op, input_dims, median(dur_ns) AS median_ns, count(*) AS group_size
  FROM task_ops GROUP BY ALL
),
task_groups AS (
  SELECT t.trace_id, t.step, t.name, t.ts_ns, t.dur_ns, t.op, t.input_dims, m.median_ns, m.group_size
  FROM task_ops t JOIN task_medians m ON m.trace_id = t.trace_id AND m.name = t.name
   AND m.op IS NOT DISTINCT FROM t.op AND m.input_dims IS NOT DISTINCT FROM t.input_dims
),
op_medians AS (
  SELECT trace_id, name, input_dims, median(dur_ns) AS median_ns, count(*) AS group_size
  FROM stepped_ops GROUP BY ALL
),
op_groups AS (
  SELECT o.*, m.median_ns, m.group_size
  FROM stepped_ops o JOIN op_medians m ON m.trace_id = o.trace_id AND m.name = o.name
   AND m.input_dims IS NOT DISTINCT FROM o.input_dims
),
op_rows AS (
  SELECT trace_id, 'device' AS level, step, name, op, input_dims, ts_ns, dur_ns, median_ns, group_size FROM task_groups
  WHERE group_size >= $min_count AND dur_ns > $multiple * median_ns AND dur_ns - median_ns >= $min_excess_ns
  UNION ALL
  SELECT trace_id, 'host', step, name, NULL, input_dims, ts_ns, dur_ns, median_ns, group_size FROM op_groups
  WHERE group_size >= $min_count AND dur_ns > $multiple * median_ns AND dur_ns - median_ns >= $min_excess_ns
),
all_rows AS (
  SELECT * FROM step_rows
  UNION ALL
  SELECT r.trace_id, t.rank, r.level, r.step, m.phase, r.name, r.op, r.input_dims, r.ts_ns, r.dur_ns, r.median_ns,
         r.dur_ns / nullif(r.median_ns, 0), r.group_size, NULL, NULL, NULL, NULL
  FROM op_rows r JOIN traces t USING (trace_id)
  LEFT JOIN step_model m ON m.trace_id = r.trace_id AND m.step IS NOT DISTINCT FROM r.step
)
SELECT * FROM all_rows
QUALIFY row_number() OVER (PARTITION BY trace_id, level ORDER BY ratio DESC, ts_ns) <= $top
ORDER BY trace_id, level = 'step' DESC, level, ratio DESC, ts_ns, name
