-- title: Launch gaps
-- description: The largest idle gaps of each device: spans with no task running on any of its streams (a gap on one stream while another keeps the device busy is not idle). With the host activity behind each: the task before the gap (the last to end) and after it (its stream), the launch call of the task after the gap, the framework op that issued it, and whether the launch came after the device had gone idle (host-bound: the host launched it late) or before (the device, a dependency or a queue held it back). device_idle_pct: the device's idle time over its span (first task start to last task end); stream_idle_pct: the idle time of the next task's stream over that stream's span.
-- units: gap_start_ns=ts, stream_idle_pct=% of stream span, device_idle_pct=% of device span
-- order: gap_ns desc
-- empty: no gap with the whole device idle reaches min_gap_ns
-- param: top INTEGER 20 Gaps to keep per trace
-- param: min_gap_ns BIGINT 1000 Ignore gaps shorter than this
-- finding: gap_ns >= 1000000 AND cause = 'host' => warning: rank {rank} device {device_id}: {gap_ns:ns} with the whole device idle before {next_task}[ (stream {stream})] because the host launched it late[ (in {host_op})]
-- finding: gap_ns >= 1000000 AND cause <> 'host' => info: rank {rank} device {device_id}: {gap_ns:ns} with the whole device idle before {next_task}[ (stream {stream})]; cause: {cause}
WITH
-- @include _device_timeline.sql
,
ordered AS (
  -- busy_until: the latest end of the device's earlier tasks, on any stream
  SELECT trace_id, rank, device_id, stream, step, slice_id, correlation, ts_ns, ts_ns + dur_ns AS end_ns,
         device_reach_ns AS busy_until, stream_reach_ns
  FROM device_timeline
),
largest AS (
  -- the largest gaps only (the joins below neither add nor drop rows, except gaps without a device: kept out here)
  SELECT trace_id, rank, device_id, stream, step, busy_until AS gap_start_ns, ts_ns - busy_until AS gap_ns,
         slice_id AS next_id, correlation
  FROM ordered o
  WHERE busy_until IS NOT NULL AND ts_ns - busy_until >= $min_gap_ns AND device_id IS NOT NULL
    -- at least the $top-th largest gap of the trace (cheaper than ranking every gap)
    AND ts_ns - busy_until >= (SELECT list_min(max(ts_ns - busy_until, $top)) FROM ordered i
                               WHERE i.trace_id = o.trace_id AND busy_until IS NOT NULL
                                 AND ts_ns - busy_until >= $min_gap_ns AND device_id IS NOT NULL)
  QUALIFY row_number() OVER (PARTITION BY trace_id ORDER BY ts_ns - busy_until DESC, busy_until) <= $top
),
previous AS (
  -- the task before each gap: one that ends where the gap starts (the first by slice_id when several do)
  SELECT d.trace_id, d.device_id, d.ts_ns + d.dur_ns AS end_ns, arg_min(d.name, d.slice_id) AS name
  FROM device_tasks d
  SEMI JOIN largest g ON g.trace_id = d.trace_id AND g.device_id = d.device_id AND g.gap_start_ns = d.ts_ns + d.dur_ns
  GROUP BY ALL
),
gaps AS (
  SELECT g.* EXCLUDE (next_id), p.name AS prev_task, n.name AS next_task
  FROM largest g
  LEFT JOIN previous p ON p.trace_id = g.trace_id AND p.device_id = g.device_id AND p.end_ns = g.gap_start_ns
  LEFT JOIN (SELECT trace_id, slice_id, name FROM device_tasks WHERE slice_id IN (SELECT next_id FROM largest)) n
    ON n.trace_id = g.trace_id AND n.slice_id = g.next_id
),
stream_idle AS (
  SELECT trace_id, device_id, stream,
         sum(ts_ns - stream_reach_ns) FILTER (WHERE ts_ns > stream_reach_ns) AS idle_ns,
         max(end_ns) - min(ts_ns) AS active_span_ns
  FROM ordered GROUP BY ALL
),
device_idle AS (
  SELECT trace_id, device_id, sum(ts_ns - busy_until) FILTER (WHERE ts_ns > busy_until) AS idle_ns,
         max(end_ns) - min(ts_ns) AS span_ns
  FROM ordered GROUP BY ALL
),
-- @include _launches.sql
,
gap_launches AS (
  -- the launches of the tasks after the gaps, and the host slices they name, looked up with semi-joins: a join's
  -- hash table is then built on these few rows, not on all launches or all slices
  SELECT trace_id, correlation, launch_id, launch_ts_ns, launch_parent_id FROM launches
  WHERE correlation IN (SELECT correlation FROM largest)
),
launch_slices AS (
  SELECT trace_id, slice_id, name FROM slices
  WHERE slice_id IN (SELECT launch_id FROM gap_launches UNION ALL SELECT launch_parent_id FROM gap_launches)
)
SELECT g.trace_id, g.rank, g.device_id, g.stream, g.step, g.gap_start_ns, g.gap_ns, g.prev_task, g.next_task,
       lc.name AS launch_call, l.launch_ts_ns, op.name AS host_op,
       CASE WHEN l.launch_ts_ns IS NULL THEN 'unknown (no launch recorded)'
            WHEN l.launch_ts_ns >= g.gap_start_ns THEN 'host'
            ELSE 'device, dependency or queue' END AS cause,
       100.0 * s.idle_ns / nullif(s.active_span_ns, 0) AS stream_idle_pct,
       100.0 * coalesce(di.idle_ns, 0) / nullif(di.span_ns, 0) AS device_idle_pct
FROM gaps g
LEFT JOIN gap_launches l ON l.trace_id = g.trace_id AND l.correlation = g.correlation
LEFT JOIN launch_slices lc ON lc.trace_id = l.trace_id AND lc.slice_id = l.launch_id
LEFT JOIN launch_slices op ON op.trace_id = l.trace_id AND op.slice_id = l.launch_parent_id
JOIN stream_idle s ON s.trace_id = g.trace_id AND s.device_id = g.device_id AND s.stream IS NOT DISTINCT FROM g.stream
JOIN device_idle di ON di.trace_id = g.trace_id AND di.device_id = g.device_id
QUALIFY row_number() OVER (PARTITION BY g.trace_id ORDER BY g.gap_ns DESC, g.gap_start_ns) <= $top
ORDER BY g.trace_id, g.gap_ns DESC, g.gap_start_ns
