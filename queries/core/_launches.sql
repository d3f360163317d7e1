-- Shared by the step model, fusion_candidates, launch_gaps and launch_latency: the host call that launched each
-- device task (runtime or driver slice; the first by time when several share a correlation), one row per
-- (trace, correlation). A query includes it as one of its CTEs.
-- materialize: launches
launches AS (
  -- a grouped arg_min rather than DISTINCT ON ... ORDER BY: no sort of all launch calls, and ties in time go to the
  -- first slice
  SELECT trace_id, correlation, first.slice_id AS launch_id, first.ts_ns AS launch_ts_ns,
         first.dur_ns AS launch_dur_ns, first.parent_id AS launch_parent_id
  FROM (SELECT trace_id, correlation,
               arg_min({'slice_id': slice_id, 'ts_ns': ts_ns, 'dur_ns': dur_ns, 'parent_id': parent_id},
                       (ts_ns, slice_id)) AS first
        -- only calls that launched device work (not syncs or event records): fewer groups to build, and
        -- fusion_candidates' typical launch is that of real launches
        FROM (SELECT * FROM slices WHERE kind IN ('runtime', 'driver') AND correlation IS NOT NULL) s
        SEMI JOIN (SELECT trace_id, correlation FROM device_tasks) d
          ON d.trace_id = s.trace_id AND d.correlation = s.correlation
        GROUP BY trace_id, correlation)
)
