-- title: Kernel families
-- description: Device tasks grouped into families by kind and name (the core pack's _family_rules.sql; the first matching rule wins): copy (memcpy/memset tasks and copy kernels), comm (collectives and point-to-point communication: NCCL/RCCL, HCCL, MSCCL/MSCCL++, DeepEP, NVSHMEM, custom all-reduce), kv_cache (KV-cache writes), attention, gemm (GEMM/GEMV, convolutions), norm, sampling (argmax, top-k/top-p), elementwise (activations, rotary, embedding/index, casts, fused pointwise), other. Per trace: tasks, total and mean time, share of all device task time, and the distinct task names in each family.
-- units: share_pct=% of device task time
-- order: total_ns desc
-- empty: no device tasks (a CPU-only trace)
-- finding: family = 'other' AND share_pct >= 20 => info: rank {rank}: {share_pct:.1f}% of device task time is in kernels no family rule matches ({tasks} tasks), see names
-- finding: family = 'comm' AND share_pct >= 30 => info: rank {rank}: communication kernels take {share_pct:.1f}% of device task time
-- scope: rank
WITH
-- @include _family_rules.sql
,
classified AS (
  SELECT d.trace_id, d.rank, d.name, d.dur_ns, f.family
  FROM device_tasks d
  JOIN task_families f ON f.kind = d.kind AND f.name IS NOT DISTINCT FROM d.name
),
totals AS (SELECT trace_id, sum(dur_ns) AS all_ns FROM device_tasks GROUP BY ALL)
SELECT c.trace_id, any_value(c.rank) AS rank, c.family, count(*) AS tasks, CAST(sum(c.dur_ns) AS BIGINT) AS total_ns,
       avg(c.dur_ns) AS mean_ns, 100.0 * sum(c.dur_ns) / nullif(any_value(t.all_ns), 0) AS share_pct,
       count(DISTINCT c.name) AS distinct_names, list_sort(list_distinct(list(c.name))) AS names
FROM classified c JOIN totals t USING (trace_id)
GROUP BY c.trace_id, c.family
ORDER BY c.trace_id, total_ns DESC
