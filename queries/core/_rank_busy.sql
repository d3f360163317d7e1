-- Shared by slow_rank and comm_overlap: per trace, rank and step, busy_breakdown's split of the device time (its
-- step rows, the step's device windows; the time outside them under step null), added over the rank's devices:
-- compute_ns, comm_ns (communication running), hidden_ns (communication while compute runs: busy_breakdown's
-- overlapped_ns) and exposed_ns (communication while no compute runs: its comm_not_overlapped_ns). Empty unless
-- the traces hold two or more ranks (for one rank busy_breakdown itself has the split).
-- materialize: rank_busy
-- @include _busy_rows.sql
,
rank_busy AS (
  SELECT trace_id, rank, step,
         CAST(sum(compute_ns) AS BIGINT) AS compute_ns, CAST(sum(comm_ns) AS BIGINT) AS comm_ns,
         CAST(sum(overlapped_ns) AS BIGINT) AS hidden_ns, CAST(sum(comm_not_overlapped_ns) AS BIGINT) AS exposed_ns
  FROM busy_rows
  WHERE scope IN ('step', 'outside steps') AND (SELECT count(DISTINCT rank) FROM traces) >= 2
  GROUP BY ALL
)
