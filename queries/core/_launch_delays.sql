-- Shared by launch_latency and `traceview diff` (its launch_latency metric), so both measure the same thing: per
-- device task with a recorded launch (its correlation's first runtime or driver call), the time from the start
-- of that launch call to the start of the task, and whether its stream was still busy with earlier work when the
-- call started (`queued`). Not queued: the launch latency (launch overhead on an empty queue); queued: the queue
-- delay (the task waited behind earlier work of its stream). Needs the CTEs of _device_timeline.sql and
-- _launches.sql before it.
launch_delays AS (
  SELECT d.trace_id, d.rank, d.device_id, d.stream, d.kind, d.step, d.slice_id,
         d.ts_ns - l.launch_ts_ns AS delay_ns,
         coalesce(d.stream_reach_ns > l.launch_ts_ns, false) AS queued
  FROM device_timeline d JOIN launches l ON l.trace_id = d.trace_id AND l.correlation = d.correlation
)
