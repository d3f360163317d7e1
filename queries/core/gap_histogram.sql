-- title: Gap histogram
-- description: Distribution of the device's idle gaps: spans with no task running on any of its streams (a gap on one stream while another keeps the device busy is not idle), in log-spaced buckets (1 µs, 10 µs, 100 µs, 1 ms, 10 ms, more). idle_ns sums to the device idle time of busy_breakdown's device rows; share_of_span_pct is a bucket's idle time over the trace's device span (per device, first task start to last task end, summed over its devices).
-- units: share_of_span_pct=% of device span
-- order: idle_ns desc
-- empty: no idle gaps on any device (no device tasks, or the devices never idle)
WITH
-- @include _device_timeline.sql
,
ordered AS (
  -- busy_until: the latest end of the device's earlier tasks, on any stream
  SELECT trace_id, rank, device_id, ts_ns, ts_ns + dur_ns AS end_ns, device_reach_ns AS busy_until
  FROM device_timeline
),
gaps AS (SELECT *, ts_ns - busy_until AS gap_ns FROM ordered WHERE ts_ns > busy_until),
spans AS (SELECT trace_id, sum(span) AS span_ns FROM (
  SELECT trace_id, device_id, max(end_ns) - min(ts_ns) AS span FROM ordered GROUP BY ALL) GROUP BY ALL)
SELECT g.trace_id, g.rank,
       CASE WHEN gap_ns < 1000 THEN '< 1 us' WHEN gap_ns < 10000 THEN '1-10 us' WHEN gap_ns < 100000 THEN '10-100 us'
            WHEN gap_ns < 1000000 THEN '100 us-1 ms' WHEN gap_ns < 10000000 THEN '1-10 ms' ELSE '>= 10 ms' END AS bucket,
       min(gap_ns) AS bucket_min_ns, count(*) AS gaps, CAST(sum(gap_ns) AS BIGINT) AS idle_ns,
       100.0 * sum(gap_ns) / nullif(any_value(s.span_ns), 0) AS share_of_span_pct
FROM gaps g JOIN spans s USING (trace_id)
GROUP BY ALL ORDER BY g.trace_id, bucket_min_ns
