-- Shared by slow_rank and comm_overlap: per trace, rank and step, the device time of compute and communication
-- tasks, swept over task boundaries as busy_breakdown does it (per device and launching step, then summed over the
-- rank's devices; busy_breakdown's step rows are device windows instead): comm_ns (communication running), hidden_ns (communication while compute runs), exposed_ns
-- (communication while no compute runs) and compute_ns. It reads device_tasks, the tasks device_timeline
-- (_device_timeline.sql, which busy_breakdown sweeps) is made of, with the same kind classes; the sweep needs
-- none of device_timeline's ordering windows, which would cost the cluster command more than the rest. Empty
-- unless the traces hold two or more ranks (for one rank busy_breakdown has the same split; the sweep is not
-- paid twice).
-- materialize: rank_busy
rb_tasks AS (
  SELECT trace_id, rank, device_id, step, ts_ns AS s, ts_ns + dur_ns AS e,
         CASE WHEN kind = 'comm' THEN 'comm' WHEN kind IN ('memcpy', 'memset') THEN 'mem' ELSE 'compute' END AS cls
  FROM device_tasks
  WHERE (SELECT count(DISTINCT rank) FROM traces) >= 2
),
rb_edges AS (
  SELECT trace_id, rank, device_id, step, s AS t, (cls = 'compute')::INT AS dc, (cls = 'comm')::INT AS dm
  FROM rb_tasks
  UNION ALL
  SELECT trace_id, rank, device_id, step, e AS t, -(cls = 'compute')::INT, -(cls = 'comm')::INT FROM rb_tasks
),
rb_segments AS (
  -- as busy_breakdown: every task adds and removes itself within its group, so one global running sum serves
  SELECT *, sum(dc) OVER w AS active_compute, sum(dm) OVER w AS active_comm, lead(t) OVER w - t AS len
  FROM rb_edges
  WINDOW w AS (ORDER BY trace_id, rank, device_id, step, t ROWS UNBOUNDED PRECEDING)
),
rank_busy AS (
  SELECT trace_id, rank, step,
         CAST(sum(compute_ns) AS BIGINT) AS compute_ns, CAST(sum(comm_ns) AS BIGINT) AS comm_ns,
         CAST(sum(hidden_ns) AS BIGINT) AS hidden_ns, CAST(sum(exposed_ns) AS BIGINT) AS exposed_ns
  FROM (
    SELECT trace_id, rank, device_id, step,
           coalesce(sum(len) FILTER (WHERE active_compute > 0), 0) AS compute_ns,
           coalesce(sum(len) FILTER (WHERE active_comm > 0), 0) AS comm_ns,
           coalesce(sum(len) FILTER (WHERE active_comm > 0 AND active_compute > 0), 0) AS hidden_ns,
           coalesce(sum(len) FILTER (WHERE active_comm > 0 AND active_compute = 0), 0) AS exposed_ns
    FROM rb_segments GROUP BY ALL
  )
  GROUP BY ALL
)
