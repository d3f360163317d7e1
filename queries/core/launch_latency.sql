-- title: Launch latency
-- description: Per trace, device and task kind, two measures of the time from the start of a task's launch call on the host to the start of the task on the device (matched by correlation). Launch latency (launch_latency_*): over the tasks launched onto an idle stream (no earlier task of the stream still running when the call started), the launch overhead on an empty queue. Queue delay (queue_delay_*): over the tasks launched while earlier work of their stream was still running, how long the task waited behind it (it includes the launch overhead). tasks: all tasks with a recorded launch; launched_idle and queued split them.
-- order: launch_latency_p50_ns desc
-- empty: no device task has a launch call (matched by correlation)
-- finding: launch_latency_p50_ns >= 50000 => info: rank {rank} device {device_id}: median launch latency of {kind} tasks is {launch_latency_p50_ns:ns} (over the {launched_idle} tasks launched onto an idle stream)
WITH
-- @include _device_timeline.sql
,
-- @include _launches.sql
,
-- @include _launch_delays.sql
SELECT trace_id, rank, device_id, kind, count(*) AS tasks,
       count(*) FILTER (WHERE NOT queued) AS launched_idle,
       avg(delay_ns) FILTER (WHERE NOT queued) AS launch_latency_mean_ns,
       quantile_disc(delay_ns, 0.5) FILTER (WHERE NOT queued) AS launch_latency_p50_ns,
       quantile_disc(delay_ns, 0.99) FILTER (WHERE NOT queued) AS launch_latency_p99_ns,
       max(delay_ns) FILTER (WHERE NOT queued) AS launch_latency_max_ns,
       count(*) FILTER (WHERE queued) AS queued,
       quantile_disc(delay_ns, 0.5) FILTER (WHERE queued) AS queue_delay_p50_ns,
       quantile_disc(delay_ns, 0.99) FILTER (WHERE queued) AS queue_delay_p99_ns,
       max(delay_ns) FILTER (WHERE queued) AS queue_delay_max_ns
FROM launch_delays GROUP BY ALL ORDER BY trace_id, device_id, kind
