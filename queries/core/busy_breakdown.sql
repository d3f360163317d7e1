-- title: Device busy breakdown
-- description: Per rank, device and step: span, compute, communication (all, not overlapped, overlapped with compute), memory copies and idle time, from the device tasks themselves (a sweep over task boundaries, so overlapping tasks count once). Device work outside any step is in the row whose step is null. idle_ns is the span (first to last device task) with no task running; free_ns is Ascend's Free of step_trace_time: the span of compute and communication tasks minus the time either runs.
-- units: idle_pct=% of device span, comm_not_overlapped_pct=% of device span
-- order: idle_ns desc
-- empty: no device tasks (a CPU-only trace)
-- finding: step IS NOT NULL AND span_ns > 0 AND idle_ns > 0.3 * span_ns => warning: rank {rank} device {device_id} step {step}: device idle {idle_pct:.1f}% of the step span
-- finding: step IS NULL AND span_ns > 0 AND idle_ns > 0.3 * span_ns => warning: rank {rank} device {device_id}, outside any step: device idle {idle_pct:.1f}% of the time from the first task to the last
-- finding: comm_ns > 0 AND comm_not_overlapped_ns > 0.5 * comm_ns AND comm_not_overlapped_ns > 0.1 * span_ns => info: rank {rank} device {device_id}[ step {step}]: {comm_not_overlapped_pct:.1f}% of the span is communication not overlapped with compute
WITH
-- @include _device_timeline.sql
,
tasks AS (
  SELECT trace_id, rank, device_id, step, ts_ns AS s, ts_ns + dur_ns AS e,
         CASE WHEN kind = 'comm' THEN 'comm' WHEN kind IN ('memcpy', 'memset') THEN 'mem' ELSE 'compute' END AS cls
  FROM device_timeline
),
edges AS (
  SELECT trace_id, rank, device_id, step, s AS t, (cls = 'compute')::INT AS dc, (cls = 'comm')::INT AS dm,
         (cls = 'mem')::INT AS dy
  FROM tasks
  UNION ALL
  SELECT trace_id, rank, device_id, step, e AS t, -(cls = 'compute')::INT, -(cls = 'comm')::INT, -(cls = 'mem')::INT
  FROM tasks
),
segments AS (
  -- Every task adds and removes itself within its (trace, rank, device, step) group, so the running
  -- sums in one global order are the running sums of the group: no window partitions needed.
  -- The last row of a group has every count at zero, so its length (to the next group) is never summed.
  -- Edges at the same time need no merging: all but the last of them get a length of zero.
  SELECT *,
         sum(dc) OVER w AS active_compute, sum(dm) OVER w AS active_comm, sum(dy) OVER w AS active_mem,
         lead(t) OVER w - t AS len
  FROM edges
  WINDOW w AS (ORDER BY trace_id, rank, device_id, step, t ROWS UNBOUNDED PRECEDING)
),
kernel_spans AS (
  SELECT trace_id, rank, device_id, step, max(e) - min(s) AS kernel_span_ns
  FROM tasks WHERE cls <> 'mem' GROUP BY ALL
),
breakdown AS (
  SELECT trace_id, rank, device_id, step,
         max(t) - min(t) AS span_ns,
         CAST(coalesce(sum(len) FILTER (WHERE active_compute > 0), 0) AS BIGINT) AS compute_ns,
         CAST(coalesce(sum(len) FILTER (WHERE active_comm > 0), 0) AS BIGINT) AS comm_ns,
         CAST(coalesce(sum(len) FILTER (WHERE active_comm > 0 AND active_compute = 0), 0) AS BIGINT)
           AS comm_not_overlapped_ns,
         CAST(coalesce(sum(len) FILTER (WHERE active_comm > 0 AND active_compute > 0), 0) AS BIGINT) AS overlapped_ns,
         CAST(coalesce(sum(len) FILTER (WHERE active_mem > 0 AND active_compute = 0 AND active_comm = 0), 0) AS BIGINT)
           AS memcpy_ns,
         max(t) - min(t)
           - CAST(coalesce(sum(len) FILTER (WHERE active_mem <> 0 OR active_compute <> 0 OR active_comm <> 0), 0)
                  AS BIGINT) AS idle_ns
  FROM segments GROUP BY ALL
)
SELECT b.*,
       k.kernel_span_ns - b.compute_ns - b.comm_not_overlapped_ns AS free_ns,
       100.0 * b.idle_ns / nullif(b.span_ns, 0) AS idle_pct,
       100.0 * b.comm_not_overlapped_ns / nullif(b.span_ns, 0) AS comm_not_overlapped_pct
FROM breakdown b
LEFT JOIN kernel_spans k ON k.trace_id = b.trace_id AND k.device_id IS NOT DISTINCT FROM b.device_id
  AND k.step IS NOT DISTINCT FROM b.step
ORDER BY b.trace_id, b.rank, b.device_id, b.step NULLS LAST
