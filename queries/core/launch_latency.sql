-- title: Launch latency
-- description: Time from the start of the launch call on the host to the start of the device task it launched (matched by correlation), per trace, device and task kind: count, mean, p50, p99, max.
-- order: p50_ns desc
-- empty: no device task has a launch call (matched by correlation)
-- finding: p50_ns >= 50000 => info: rank {rank} device {device_id}: median launch latency of {kind} tasks is {p50_ns} ns
WITH
-- @include _launches.sql
,
latency AS (
  SELECT d.trace_id, d.rank, d.device_id, d.kind, d.ts_ns - l.launch_ts_ns AS latency_ns
  FROM device_tasks d JOIN launches l ON l.trace_id = d.trace_id AND l.correlation = d.correlation
)
SELECT trace_id, rank, device_id, kind, count(*) AS tasks, avg(latency_ns) AS mean_ns,
       quantile_disc(latency_ns, 0.5) AS p50_ns, quantile_disc(latency_ns, 0.99) AS p99_ns, max(latency_ns) AS max_ns
FROM latency GROUP BY ALL ORDER BY trace_id, device_id, kind
