-- title: Format conversion (Ascend)
-- description: Ascend device tasks that only convert data: TransData and format casts (layout formats such as ND <-> FRACTAL_NZ / NC1HWC0), Cast (dtype) and Transpose (layout), by operator type or kernel name. Per trace and operator: the conversion (formats and dtypes in -> out), calls, time and share of all device task time. No rows on GPU traces.
-- units: share_pct=% of device task time
-- order: total_ns desc
-- empty: no format or dtype conversion tasks (or not an Ascend trace)
-- finding: share_pct >= 5 => warning: rank {rank}: {conversion} conversions ({op_type}) take {share_pct:.1f}% of device task time ({calls} calls, {total_ns:ns}): keep tensors in the format and dtype the next operator expects
-- finding: share_pct >= 1 AND share_pct < 5 => info: rank {rank}: {conversion} conversions ({op_type}) take {share_pct:.1f}% of device task time ({calls} calls)
WITH npu_tasks AS (
  SELECT d.trace_id, d.rank, d.device_id, d.step, d.name, d.dur_ns, coalesce(n.op_type, d.name) AS op_type,
         n.input_formats, n.output_formats, n.input_dtypes, n.output_dtypes
  FROM device_tasks d
  LEFT JOIN npu_kernel_metrics n ON n.trace_id = d.trace_id AND n.slice_id = d.slice_id
  WHERE d.device_type = 'npu'
),
conversions AS (
  SELECT *,
         CASE WHEN regexp_matches(op_type || ' ' || name, '(?i)transdata|format_?cast|reformat|formattransfer')
                THEN 'format'
              WHEN regexp_matches(op_type || ' ' || name, '(?i)(^|[^a-z])cast') THEN 'dtype'
              WHEN regexp_matches(op_type || ' ' || name, '(?i)transpose|permute') THEN 'layout' END AS conversion
  FROM npu_tasks
),
totals AS (SELECT trace_id, sum(dur_ns) AS all_ns FROM device_tasks GROUP BY ALL)
SELECT c.trace_id, any_value(c.rank) AS rank, c.conversion, c.op_type,
       coalesce(split_part(c.input_formats, ';', 1) || ' -> ' || split_part(c.output_formats, ';', 1), '') AS formats,
       coalesce(split_part(c.input_dtypes, ';', 1) || ' -> ' || split_part(c.output_dtypes, ';', 1), '') AS dtypes,
       count(*) AS calls, CAST(sum(c.dur_ns) AS BIGINT) AS total_ns, avg(c.dur_ns) AS mean_ns,
       100.0 * sum(c.dur_ns) / nullif(any_value(t.all_ns), 0) AS share_pct, count(DISTINCT c.step) AS steps,
       list_distinct(list(c.name))[1:5] AS names
FROM conversions c JOIN totals t USING (trace_id)
WHERE c.conversion IS NOT NULL
GROUP BY c.trace_id, c.conversion, c.op_type, formats, dtypes
ORDER BY c.trace_id, total_ns DESC
