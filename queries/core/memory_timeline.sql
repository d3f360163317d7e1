-- title: Memory timeline
-- description: Allocated and reserved memory per device over time from the allocator events, reduced to at most max_points time buckets per device (each bucket keeps its highest values, so peaks survive).
-- units: total_allocated=bytes, total_reserved=bytes
-- order: total_reserved desc
-- empty: no allocator events (memory profiling was off)
-- param: max_points INTEGER 1500 Buckets per device
WITH m AS (
  SELECT trace_id, rank, device_type, device_id, ts_ns, total_allocated, total_reserved,
         min(ts_ns) OVER (PARTITION BY trace_id, device_type, device_id) AS t0,
         max(ts_ns) OVER (PARTITION BY trace_id, device_type, device_id) AS t1
  FROM memory WHERE total_allocated IS NOT NULL
)
SELECT trace_id, rank, device_type, device_id, min(ts_ns) AS ts_ns,
       max(total_allocated) AS total_allocated, max(total_reserved) AS total_reserved
FROM m
GROUP BY trace_id, rank, device_type, device_id,
         -- in HUGEINT: (ts_ns - t0) * max_points overflows BIGINT once a device's events span 71 days
         (CAST(ts_ns AS HUGEINT) - t0) * $max_points // greatest(CAST(t1 AS HUGEINT) - t0, 1)
ORDER BY trace_id, device_type, device_id, ts_ns
