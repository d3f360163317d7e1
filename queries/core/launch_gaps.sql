-- title: Launch gaps
-- description: The largest idle gaps between consecutive tasks on each device stream, with the host activity behind them: the launch call of the task after the gap, the framework op that issued it, and whether the launch came after the stream had gone idle (host-bound) or before (the device or a dependency held it back). Stream idle share is the stream's idle time over its active span.
-- units: gap_start_ns=ts, stream_idle_pct=% of stream span
-- order: gap_ns desc
-- empty: no idle gap between device tasks reaches min_gap_ns
-- param: top INTEGER 20 Gaps to keep per trace
-- param: min_gap_ns BIGINT 1000 Ignore gaps shorter than this
-- finding: gap_ns >= 1000000 AND cause = 'host' => warning: rank {rank} device {device_id}[ stream {stream}]: {gap_ns} ns idle before {next_task} because the host launched it late[ (in {host_op})]
-- finding: gap_ns >= 1000000 AND cause <> 'host' => info: rank {rank} device {device_id}[ stream {stream}]: {gap_ns} ns idle before {next_task}; cause: {cause}
WITH
-- @include _device_timeline.sql
,
ordered AS (
  SELECT trace_id, rank, device_id, stream, step, slice_id, correlation, ts_ns, ts_ns + dur_ns AS end_ns,
         stream_reach_ns AS busy_until, stream_prev_id AS prev_id
  FROM device_timeline
),
largest AS (
  -- the largest gaps only (the joins below neither add nor drop rows, except gaps without a device: kept out here)
  SELECT trace_id, rank, device_id, stream, step, busy_until AS gap_start_ns, ts_ns - busy_until AS gap_ns,
         prev_id, slice_id AS next_id, correlation
  FROM ordered o
  WHERE busy_until IS NOT NULL AND ts_ns - busy_until >= $min_gap_ns AND device_id IS NOT NULL
    -- at least the $top-th largest gap of the trace (cheaper than ranking every gap)
    AND ts_ns - busy_until >= (SELECT list_min(max(ts_ns - busy_until, $top)) FROM ordered i
                               WHERE i.trace_id = o.trace_id AND busy_until IS NOT NULL
                                 AND ts_ns - busy_until >= $min_gap_ns AND device_id IS NOT NULL)
  QUALIFY row_number() OVER (PARTITION BY trace_id ORDER BY ts_ns - busy_until DESC, busy_until) <= $top
),
gaps AS (
  SELECT g.* EXCLUDE (prev_id, next_id), p.name AS prev_task, n.name AS next_task
  FROM largest g
  LEFT JOIN (SELECT trace_id, slice_id, name FROM device_tasks
             WHERE slice_id IN (SELECT prev_id FROM largest UNION ALL SELECT next_id FROM largest)) p
    ON p.trace_id = g.trace_id AND p.slice_id = g.prev_id
  LEFT JOIN (SELECT trace_id, slice_id, name FROM device_tasks
             WHERE slice_id IN (SELECT prev_id FROM largest UNION ALL SELECT next_id FROM largest)) n
    ON n.trace_id = g.trace_id AND n.slice_id = g.next_id
),
stream_idle AS (
  SELECT trace_id, device_id, stream, sum(ts_ns - busy_until) FILTER (WHERE ts_ns > busy_until) AS idle_ns,
         max(end_ns) - min(ts_ns) AS active_span_ns
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
       100.0 * s.idle_ns / nullif(s.active_span_ns, 0) AS stream_idle_pct
FROM gaps g
LEFT JOIN gap_launches l ON l.trace_id = g.trace_id AND l.correlation = g.correlation
LEFT JOIN launch_slices lc ON lc.trace_id = l.trace_id AND lc.slice_id = l.launch_id
LEFT JOIN launch_slices op ON op.trace_id = l.trace_id AND op.slice_id = l.launch_parent_id
JOIN stream_idle s ON s.trace_id = g.trace_id AND s.device_id = g.device_id AND s.stream IS NOT DISTINCT FROM g.stream
QUALIFY row_number() OVER (PARTITION BY g.trace_id ORDER BY g.gap_ns DESC, g.gap_start_ns) <= $top
ORDER BY g.trace_id, g.gap_ns DESC, g.gap_start_ns
