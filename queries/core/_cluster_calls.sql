-- Shared by collective_skew, slow_rank and comm_bandwidth: every collective call of every rank, aligned across
-- ranks by (group, op, seq) (send and recv are one op, send_recv: the two ends of a transfer), with its step (the
-- recorded one, else the step of its slice) and the arrival statistics of its collective: first and last arrival
-- (call start), last end, members, the recorded wait and transit (Ascend), arrival_order (1: the last to arrive; ties by rank) and the call's wait, the
-- time from its own arrival to the last one's (what the late rank cost it). cluster_collectives: one row per
-- collective seen on two or more ranks, with lateness_ns (the last arrival minus the median arrival of the others).
-- materialize: cluster_calls, cluster_collectives
cluster_calls AS (
  SELECT *,
         min(ts_ns) OVER k AS first_arrival_ts_ns,
         max(ts_ns) OVER k AS last_arrival_ts_ns,
         max(ts_ns + dur_ns) OVER k AS last_end_ts_ns,
         count(*) OVER k AS members,
         max(ts_ns) OVER k - ts_ns AS arrival_wait_ns,
         row_number() OVER (PARTITION BY "group", coll_op, seq ORDER BY ts_ns DESC, rank DESC) AS arrival_order
  FROM (
    SELECT trace_id, rank, slice_id, step, name, op,
           CASE WHEN op IN ('send', 'recv') THEN 'send_recv' ELSE op END AS coll_op,
           coalesce("group", '') AS "group", group_size, seq, ts_ns, dur_ns, bytes, wait_ns AS recorded_wait_ns,
           transit_ns
    FROM (
      SELECT trace_id, rank, slice_id, step, name, op, "group", group_size, seq, ts_ns, dur_ns, bytes, wait_ns,
             transit_ns
      FROM collectives WHERE step IS NOT NULL
      UNION ALL
      -- the step of the call's slice where the collectives row has none (a join only for those rows)
      SELECT c.trace_id, c.rank, c.slice_id, s.step, c.name, c.op, c."group", c.group_size, c.seq, c.ts_ns, c.dur_ns,
             c.bytes, c.wait_ns, c.transit_ns
      FROM (SELECT * EXCLUDE (group_ranks) FROM collectives WHERE step IS NULL) c
      LEFT JOIN slices s ON s.trace_id = c.trace_id AND s.slice_id = c.slice_id
    )
    WHERE seq IS NOT NULL AND ts_ns IS NOT NULL AND dur_ns >= 0
  )
  WINDOW k AS (PARTITION BY "group", coll_op, seq)
),
cluster_collectives AS (
  SELECT "group", coll_op AS op, seq,
         min(step) AS step,
         arg_max(name, ts_ns) FILTER (WHERE arrival_order = 1) AS name,
         count(DISTINCT rank) AS ranks,
         max(group_size) AS group_size,
         min(ts_ns) AS first_arrival_ts_ns,
         max(ts_ns) AS last_arrival_ts_ns,
         max(ts_ns) - min(ts_ns) AS skew_ns,
         any_value(rank) FILTER (WHERE arrival_order = 1) AS last_rank,
         any_value(trace_id) FILTER (WHERE arrival_order = 1) AS last_trace_id,
         arg_min(rank, ts_ns) AS first_rank,
         max(ts_ns) - CAST(quantile_cont(ts_ns, 0.5) FILTER (WHERE arrival_order > 1) AS BIGINT) AS lateness_ns,
         CAST(sum(arrival_wait_ns) AS BIGINT) AS wait_ns,
         max(bytes) AS bytes,
         max(ts_ns + dur_ns) - max(ts_ns) AS transfer_ns
  FROM cluster_calls
  GROUP BY "group", coll_op, seq
  HAVING count(DISTINCT rank) >= 2
)
