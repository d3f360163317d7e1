-- Shared by hotspots, launch_gaps, gap_histogram, fusion_candidates, busy_breakdown and spikes: every device
-- task with what ran before it, in start order on its device and on its stream (ties broken by duration, then
-- slice_id). device_reach_ns / stream_reach_ns: the latest end of the earlier tasks of the device / stream (there
-- is a gap before the task when it starts later); stream_prev_*: the previous task of the stream. Sorting the
-- tasks once here spares each query its own sorts; names and shapes stay out (sorted along, they would double
-- the cost). A query includes it as one of its CTEs.
-- materialize: device_timeline
device_timeline AS (
  SELECT trace_id, rank, slice_id, kind, device_id, stream, step, correlation, ts_ns, dur_ns,
         max(ts_ns + dur_ns) OVER (PARTITION BY trace_id, device_id ORDER BY ts_ns, dur_ns, slice_id
                                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS device_reach_ns,
         max(ts_ns + dur_ns) OVER (PARTITION BY trace_id, device_id, stream ORDER BY ts_ns, dur_ns, slice_id
                                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS stream_reach_ns,
         lag(ts_ns + dur_ns) OVER stream_order AS stream_prev_end_ns,
         lag(dur_ns) OVER stream_order AS stream_prev_dur_ns
  FROM device_tasks
  WINDOW stream_order AS (PARTITION BY trace_id, device_id, stream ORDER BY ts_ns, dur_ns, slice_id)
)
