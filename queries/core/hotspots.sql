-- title: Hotspots
-- description: Kernels and device tasks by total device time, and framework operators by host self time: count, mean, p50, p99, and share of busy time (device: the union of device task time per trace; host: the sum of operator self time); on Ascend also the accelerator core.
-- units: share_pct=% of busy time (device rows: device busy time; host rows: host op self time)
-- order: level asc, total_ns desc
-- empty: no device tasks and no framework operators
-- param: top INTEGER 25 Rows to keep per trace and level
-- finding: level = 'device' AND share_pct >= 30 => warning: {name} takes {share_pct:.1f}% of device busy time on rank {rank} ({calls} calls, mean {mean_ns:ns})
WITH device AS (
  SELECT trace_id, rank, 'device' AS level, kind, coalesce(core, '') AS core, name, dur_ns AS t
  FROM device_tasks
),
host AS (
  SELECT trace_id, rank, 'host' AS level, kind, '' AS core, name, self_ns AS t
  FROM ops
),
-- @include _device_timeline.sql
,
ordered AS (
  SELECT trace_id, device_id, ts_ns AS s, ts_ns + dur_ns AS e, device_reach_ns AS reach FROM device_timeline
),
busy AS (
  -- device: the union of task intervals per device (in start order, a task adds the part of its interval past
  -- everything that started before it); host: the sum of operator self time
  SELECT trace_id, 'device' AS level, sum(greatest(e - greatest(s, coalesce(reach, s)), 0)) AS level_total
  FROM ordered GROUP BY ALL
  UNION ALL
  SELECT trace_id, 'host' AS level, sum(t) FROM host GROUP BY ALL
),
grouped AS (
  SELECT trace_id, rank, level, kind, core, name,
         count(*) AS calls, CAST(sum(t) AS BIGINT) AS total_ns, avg(t) AS mean_ns,
         quantile_disc(t, 0.5) AS p50_ns, quantile_disc(t, 0.99) AS p99_ns, max(t) AS max_ns
  FROM (SELECT * FROM device UNION ALL SELECT * FROM host)
  GROUP BY ALL
)
SELECT g.trace_id, g.rank, g.level, g.kind, g.core, g.name, g.calls, g.total_ns, g.mean_ns, g.p50_ns, g.p99_ns, g.max_ns,
       100.0 * g.total_ns / nullif(b.level_total, 0) AS share_pct
FROM grouped g JOIN busy b USING (trace_id, level)
QUALIFY row_number() OVER (PARTITION BY g.trace_id, g.level ORDER BY g.total_ns DESC, g.name, g.kind, g.core) <= $top
ORDER BY g.trace_id, g.level, g.total_ns DESC, g.name, g.kind, g.core
