-- title: AI CPU fallback (Ascend)
-- description: Ascend device tasks that ran on the AI CPU (core AI_CPU, from the task itself or its kernel_details row): operators with no AI Core kernel for these dtypes or shapes, or unsupported ones, executed slowly on the device's CPU cores. Per trace, operator and issuing host op: calls, time, share of all device task time, steps affected. No rows on GPU traces.
-- units: share_pct=% of device task time
-- order: total_ns desc
-- empty: no device task ran on the AI CPU (or not an Ascend trace)
-- finding: share_pct >= 5 => warning: rank {rank}: {name} runs on the AI CPU ({calls} calls, {total_ns:ns}, {share_pct:.1f}% of device task time); an AI Core implementation (other dtype/shape, or a supported op) would avoid the fallback
-- finding: share_pct < 5 => info: rank {rank}: {name} runs on the AI CPU ({calls} calls, {total_ns:ns})
WITH aicpu_tasks AS (
  SELECT d.trace_id, d.rank, d.device_id, d.step, d.name, d.dur_ns, d.correlation, n.op_type
  FROM device_tasks d
  LEFT JOIN npu_kernel_metrics n ON n.trace_id = d.trace_id AND n.slice_id = d.slice_id
  WHERE upper(coalesce(d.core, n.core, '')) IN ('AI_CPU', 'AICPU')
),
launches AS (
  -- the launches of those tasks only
  SELECT DISTINCT ON (trace_id, correlation) trace_id, correlation, parent_id AS launch_parent_id
  FROM slices WHERE kind IN ('runtime', 'driver') AND correlation IS NOT NULL
   AND (trace_id, correlation) IN (SELECT trace_id, correlation FROM aicpu_tasks)
  ORDER BY trace_id, correlation, ts_ns
),
aicpu AS (
  SELECT a.trace_id, a.rank, a.device_id, a.step, a.name, a.dur_ns, a.op_type, op.name AS host_op
  FROM aicpu_tasks a
  LEFT JOIN launches l ON l.trace_id = a.trace_id AND l.correlation = a.correlation
  LEFT JOIN slices op ON op.trace_id = l.trace_id AND op.slice_id = l.launch_parent_id
),
totals AS (SELECT trace_id, sum(dur_ns) AS all_ns FROM device_tasks GROUP BY ALL)
SELECT a.trace_id, any_value(a.rank) AS rank, a.device_id, a.name, any_value(a.op_type) AS op_type, a.host_op,
       count(*) AS calls, CAST(sum(a.dur_ns) AS BIGINT) AS total_ns, avg(a.dur_ns) AS mean_ns, max(a.dur_ns) AS max_ns,
       100.0 * sum(a.dur_ns) / nullif(any_value(t.all_ns), 0) AS share_pct, count(DISTINCT a.step) AS steps
FROM aicpu a JOIN totals t USING (trace_id)
GROUP BY a.trace_id, a.device_id, a.name, a.host_op
ORDER BY a.trace_id, total_ns DESC
