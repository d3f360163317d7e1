-- title: Gap histogram
-- description: Distribution of idle gaps between consecutive tasks on each device stream, in log-spaced buckets (1 µs, 10 µs, 100 µs, 1 ms, 10 ms, more), with the share of the stream's active span each bucket accounts for.
-- units: share_of_span_pct=% of stream span
-- order: idle_ns desc
-- empty: no idle gaps between device tasks (no device tasks, or one per stream)
WITH
-- @include _device_timeline.sql
,
ordered AS (
  SELECT trace_id, rank, device_id, stream, ts_ns, ts_ns + dur_ns AS end_ns, stream_reach_ns AS busy_until
  FROM device_timeline
),
gaps AS (SELECT *, ts_ns - busy_until AS gap_ns FROM ordered WHERE ts_ns > busy_until),
spans AS (SELECT trace_id, sum(span) AS span_ns FROM (
  SELECT trace_id, device_id, stream, max(end_ns) - min(ts_ns) AS span FROM ordered GROUP BY ALL) GROUP BY ALL)
SELECT g.trace_id, g.rank,
       CASE WHEN gap_ns < 1000 THEN '< 1 us' WHEN gap_ns < 10000 THEN '1-10 us' WHEN gap_ns < 100000 THEN '10-100 us'
            WHEN gap_ns < 1000000 THEN '100 us-1 ms' WHEN gap_ns < 10000000 THEN '1-10 ms' ELSE '>= 10 ms' END AS bucket,
       min(gap_ns) AS bucket_min_ns, count(*) AS gaps, CAST(sum(gap_ns) AS BIGINT) AS idle_ns,
       100.0 * sum(gap_ns) / nullif(any_value(s.span_ns), 0) AS share_of_span_pct
FROM gaps g JOIN spans s USING (trace_id)
GROUP BY ALL ORDER BY g.trace_id, bucket_min_ns
