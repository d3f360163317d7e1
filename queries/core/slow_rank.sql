-- title: Slow ranks
-- description: Per rank, over its profiler steps: steps, median_step_ns and step_ns (the ProfilerStep spans), compute_ns and comm_ns (device time, swept as busy_breakdown does; a rank without device tasks, e.g. gloo on CPU, counts its collectives' host ranges as communication), wait_ns (time its collectives waited for the last rank to arrive), times_last (collectives it reached last, at least min_lateness_ns after the median of the others), host_ns (step time with neither compute nor exposed communication running: the host's share) and work_ns (step time less wait_ns: what the rank itself needed). Each is compared with the median rank's: a rank whose work or compute exceeds it by more than slow_pct (msprof-analyze's 5%) is slow, and cause names the part (compute, host or communication, waits excluded) that exceeds the median most.
-- units: work_excess_pct=% of the median rank's work time, compute_excess_pct=% of the median rank's compute time
-- order: work_excess_pct desc
-- empty: fewer than two ranks with profiler steps
-- param: slow_pct DOUBLE 5 A rank whose work or compute time exceeds the median rank's by more than this percentage is slow
-- param: min_lateness_ns BIGINT 100000 A rank counts as last at a collective when it came at least this late (ns)
-- finding: slow => warning: rank {rank} is slow: {work_per_step_ns:ns} of its own work per step (waits for other ranks excluded), {work_excess_pct:.1f}% above the median rank[, compute {compute_excess_pct:+.1f}%]; {cause} makes it slow; it arrived last at {times_last} collectives
WITH
-- @include _rank_busy.sql
,
-- @include _cluster_calls.sql
,
steps AS (
  SELECT DISTINCT ON (trace_id, step) trace_id, rank, step, dur_ns AS step_ns
  FROM slices WHERE kind = 'step' AND device_type = 'cpu' AND step IS NOT NULL
  ORDER BY trace_id, step, ts_ns
),
call_steps AS (
  SELECT trace_id, step,
         CAST(sum(dur_ns) AS BIGINT) AS call_ns,
         CAST(sum(arrival_wait_ns) AS BIGINT) AS wait_ns
  FROM cluster_calls GROUP BY ALL
),
last_arrivals AS (
  SELECT last_trace_id AS trace_id, step, count(*) AS times_last
  FROM cluster_collectives WHERE lateness_ns >= $min_lateness_ns GROUP BY ALL
),
has_device AS (SELECT DISTINCT trace_id FROM rank_busy),
rank_steps AS (
  SELECT s.trace_id, s.rank, s.step, s.step_ns,
         coalesce(b.compute_ns, 0) AS compute_ns,
         CASE WHEN d.trace_id IS NULL THEN coalesce(c.call_ns, 0) ELSE coalesce(b.comm_ns, 0) END AS comm_ns,
         CASE WHEN d.trace_id IS NULL THEN coalesce(c.call_ns, 0) ELSE coalesce(b.exposed_ns, 0) END AS exposed_ns,
         coalesce(c.wait_ns, 0) AS wait_ns, coalesce(l.times_last, 0) AS times_last
  FROM steps s
  LEFT JOIN rank_busy b ON b.trace_id = s.trace_id AND b.step = s.step
  LEFT JOIN call_steps c ON c.trace_id = s.trace_id AND c.step = s.step
  LEFT JOIN has_device d ON d.trace_id = s.trace_id
  LEFT JOIN last_arrivals l ON l.trace_id = s.trace_id AND l.step = s.step
),
ranks AS (
  SELECT rank, count(DISTINCT step) AS steps,
         CAST(median(step_ns) AS BIGINT) AS median_step_ns,
         CAST(sum(step_ns) AS BIGINT) AS step_ns,
         CAST(sum(compute_ns) AS BIGINT) AS compute_ns,
         CAST(sum(comm_ns) AS BIGINT) AS comm_ns,
         CAST(sum(wait_ns) AS BIGINT) AS wait_ns,
         CAST(sum(times_last) AS BIGINT) AS times_last,
         CAST(sum(greatest(step_ns - compute_ns - exposed_ns, 0)) AS BIGINT) AS host_ns,
         CAST(sum(step_ns - wait_ns) AS BIGINT) AS work_ns,
         -- communication of its own, the waits left out
         CAST(sum(greatest(comm_ns - wait_ns, 0)) AS BIGINT) AS own_comm_ns
  FROM rank_steps GROUP BY rank
),
per_step AS (
  SELECT *, work_ns / steps AS work_per_step, compute_ns / steps AS compute_per_step, host_ns / steps AS host_per_step,
         own_comm_ns / steps AS comm_per_step
  FROM ranks
),
medians AS (
  SELECT median(work_per_step) AS work, median(compute_per_step) AS compute, median(host_per_step) AS host,
         median(comm_per_step) AS comm, count(*) AS ranks
  FROM per_step
)
SELECT r.rank, r.steps, r.median_step_ns, r.step_ns, r.compute_ns, r.comm_ns, r.wait_ns, r.times_last, r.host_ns,
       r.work_ns, CAST(r.work_per_step AS BIGINT) AS work_per_step_ns,
       100.0 * (r.work_per_step / nullif(m.work, 0) - 1) AS work_excess_pct,
       100.0 * (r.compute_per_step / nullif(m.compute, 0) - 1) AS compute_excess_pct,
       CASE greatest(r.compute_per_step - m.compute, r.host_per_step - m.host, r.comm_per_step - m.comm)
         WHEN r.compute_per_step - m.compute THEN 'compute'
         WHEN r.host_per_step - m.host THEN 'host'
         ELSE 'communication' END AS cause,
       m.ranks >= 2 AND coalesce(100.0 * (r.work_per_step / nullif(m.work, 0) - 1) > $slow_pct
                                 OR 100.0 * (r.compute_per_step / nullif(m.compute, 0) - 1) > $slow_pct, false)
         AS slow
FROM per_step r, medians m
WHERE m.ranks >= 2
ORDER BY r.rank
