-- Shared by the step model, fusion_candidates, launch_gaps and launch_latency: the host call that launched each
-- device task (runtime or driver slice; the first by time when several share a correlation), one row per
-- (trace, correlation). A query includes it as one of its CTEs.
-- materialize: launches
launches AS (
  SELECT DISTINCT ON (trace_id, correlation) trace_id, correlation, slice_id AS launch_id, ts_ns AS launch_ts_ns,
         dur_ns AS launch_dur_ns, parent_id AS launch_parent_id
  FROM slices WHERE kind IN ('runtime', 'driver') AND correlation IS NOT NULL
  ORDER BY trace_id, correlation, ts_ns
)
