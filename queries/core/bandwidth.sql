-- title: Memory bandwidth
-- description: Achieved memory bandwidth against the device's peak (trace_devices.peak_bw_bytes_per_s, or peak_bw_gbps when given). Rows by source: 'memcpy' (copies and sets: bytes / duration), 'kernel' (Ascend per-kernel memory metrics where collected; CUPTI dram__bytes counters; else modelled from shapes for memory-bound ops: GEMMs with at most small_m rows read their K*N weights, decode attention reads the KV cache of its step, 2 * context_len * kv_heads * head_dim * element bytes per layer), 'step' (decode steps: GEMM weights plus KV cache read, over the step's device busy time, the union of its kernels) and 'counter' (counters whose unit is a bandwidth, bytes/s, over time, e.g. HBM read/write). saturated when utilization reaches saturation_pct of peak.
-- units: utilization_pct=% of peak memory bandwidth
-- order: utilization_pct desc
-- empty: no copies, memory-bound kernels, decode steps or bandwidth counters with known bytes
-- param: peak_bw_gbps DOUBLE 0 Peak memory bandwidth in GB/s (0: the device table)
-- param: saturation_pct DOUBLE 80 Utilization (percent of peak) from which a row counts as saturated
-- param: small_m INTEGER 64 GEMMs with at most this many rows count as memory-bound (weights dominate)
-- finding: saturated AND source = 'step' => warning: rank {rank} decode step {step}: {utilization_pct:.1f}% of peak memory bandwidth ({achieved_bytes_per_s:B/s} over {dur_ns:ns} busy): the step is bound by memory bandwidth
-- finding: saturated AND source = 'counter' => info: rank {rank}: {name} at {utilization_pct:.1f}% of peak memory bandwidth
WITH RECURSIVE
-- @include _step_model.sql
,
peaks AS (
  SELECT t.trace_id,
         CASE WHEN $peak_bw_gbps > 0 THEN $peak_bw_gbps * 1e9 ELSE d.peak_bw_bytes_per_s END AS peak_bytes_per_s,
         CASE WHEN $peak_bw_gbps > 0 THEN 'param'
              WHEN d.peak_bw_bytes_per_s IS NOT NULL THEN 'device table: ' || d.spec END AS peak_source
  FROM traces t LEFT JOIN trace_devices d USING (trace_id)
),
device_args AS MATERIALIZED (
  -- one read of the args of device tasks for both uses below: the bytes of copies and sets, and the dram bytes
  -- CUPTI measured for kernels (the substring test first: it is cheap, and the key cannot be in the JSON without it)
  SELECT trace_id, slice_id, kind, args FROM slices
  WHERE device_type <> 'cpu'
    AND (kind IN ('memcpy', 'memset') OR (kind = 'kernel' AND contains(args, 'dram__bytes_read.sum')))
),
copies AS (
  SELECT t.trace_id, t.step, t.slice_id, 'memcpy' AS source, t.name, NULL AS op, t.ts_ns, t.dur_ns,
         TRY_CAST(json_extract_string(s.args, '$.bytes') AS BIGINT) AS bytes
  FROM step_tasks t
  JOIN device_args s ON s.trace_id = t.trace_id AND s.slice_id = t.slice_id AND s.kind IN ('memcpy', 'memset')
  WHERE t.kind IN ('memcpy', 'memset')
),
measured_kernels AS (
  -- bytes measured by the hardware: Ascend memory metrics (KB moved, else GB/s times core time), CUPTI dram bytes
  SELECT t.trace_id, t.step, t.slice_id, 'kernel' AS source, t.name, NULL AS op, t.ts_ns, t.dur_ns,
         CAST(coalesce(
           1024 * (TRY_CAST(json_extract_string(n.metrics, '$."read_main_memory_datas(KB)"') AS DOUBLE)
                   + coalesce(TRY_CAST(json_extract_string(n.metrics, '$."write_main_memory_datas(KB)"') AS DOUBLE),
                              0)),
           (coalesce(TRY_CAST(json_extract_string(n.metrics, '$."aic_main_mem_read_bw(GB/s)"') AS DOUBLE), 0)
            + coalesce(TRY_CAST(json_extract_string(n.metrics, '$."aic_main_mem_write_bw(GB/s)"') AS DOUBLE), 0))
             * coalesce(n.aicore_ns, 0)
           + (coalesce(TRY_CAST(json_extract_string(n.metrics, '$."aiv_main_mem_read_bw(GB/s)"') AS DOUBLE), 0)
              + coalesce(TRY_CAST(json_extract_string(n.metrics, '$."aiv_main_mem_write_bw(GB/s)"') AS DOUBLE), 0))
             * coalesce(n.aiv_ns, 0)) AS BIGINT) AS bytes
  FROM step_tasks t JOIN npu_kernel_metrics n ON n.trace_id = t.trace_id AND n.slice_id = t.slice_id
  WHERE json_exists(n.metrics, '$."read_main_memory_datas(KB)"')
     OR json_exists(n.metrics, '$."aic_main_mem_read_bw(GB/s)"')
     OR json_exists(n.metrics, '$."aiv_main_mem_read_bw(GB/s)"')
  UNION ALL
  SELECT t.trace_id, t.step, t.slice_id, 'kernel', t.name, NULL, t.ts_ns, t.dur_ns,
         CAST(coalesce(TRY_CAST(json_extract_string(s.args, '$."dram__bytes_read.sum"') AS DOUBLE), 0)
              + coalesce(TRY_CAST(json_extract_string(s.args, '$."dram__bytes_write.sum"') AS DOUBLE), 0) AS BIGINT)
  FROM step_tasks t
  JOIN device_args s ON s.trace_id = t.trace_id AND s.slice_id = t.slice_id AND s.kind = 'kernel'
  WHERE t.kind = 'kernel' AND json_exists(s.args, '$."dram__bytes_read.sum"')
),
memory_bound_ops AS (
  -- ops whose traffic the shapes give: small-M GEMMs (weights plus activations) and decode attention (the KV cache)
  SELECT g.trace_id, g.step, g.slice_id, g.name AS op,
         CAST((list_product(g.w) + list_product(g.x)
               + list_product(g.x[1:len(g.x) - 1]) * CASE WHEN g.name = 'aten::linear' THEN g.w[1] ELSE g.w[2] END
              ) * ts.elem_bytes AS BIGINT) AS bytes
  FROM gemm_calls g JOIN type_sizes ts ON ts.type_name = g.w_type
  WHERE len(g.w) = 2 AND len(g.x) >= 2 AND list_product(g.x[1:len(g.x) - 1]) <= $small_m
  UNION ALL
  SELECT a.trace_id, a.step, a.slice_id, a.name, s.context_len * s.kv_bytes_per_token_layer
  FROM attention_shapes a JOIN step_model s ON s.trace_id = a.trace_id AND s.step IS NOT DISTINCT FROM a.step
  WHERE s.phase = 'decode' AND s.context_len IS NOT NULL
),
owner_ids AS (SELECT DISTINCT trace_id, slice_id AS owner_id FROM memory_bound_ops),
owner_children AS (
  SELECT c.trace_id, o.owner_id, c.slice_id
  FROM slices c JOIN owner_ids o ON o.trace_id = c.trace_id AND c.parent_id = o.owner_id
),
task_owners AS (
  -- a kernel belongs to the ops around its launch call: the launch's parent and two levels above it; found from
  -- the (few) ops down: the launch's parent is the op, a child of it or a grandchild
  SELECT trace_id, owner_id, owner_id AS launch_parent_id FROM owner_ids
  UNION ALL
  SELECT trace_id, owner_id, slice_id FROM owner_children
  UNION ALL
  SELECT g.trace_id, c.owner_id, g.slice_id
  FROM slices g JOIN owner_children c ON c.trace_id = g.trace_id AND g.parent_id = c.slice_id
),
op_task_links AS (
  SELECT m.trace_id, m.step, m.slice_id AS op_id, m.op, m.bytes, t.slice_id, t.name, t.ts_ns, t.dur_ns
  FROM memory_bound_ops m
  JOIN task_owners o ON o.trace_id = m.trace_id AND o.owner_id = m.slice_id
  JOIN step_tasks t ON t.trace_id = o.trace_id AND t.launch_parent_id = o.launch_parent_id AND t.kind = 'kernel'
  ANTI JOIN measured_kernels k ON k.trace_id = t.trace_id AND k.slice_id = t.slice_id
),
op_tasks AS (
  SELECT trace_id, step, op_id AS slice_id, any_value(op) AS op, any_value(bytes) AS bytes,
         arg_max(name, dur_ns) AS name, min(ts_ns) AS ts_ns, CAST(sum(dur_ns) AS BIGINT) AS dur_ns
  FROM op_task_links GROUP BY trace_id, step, op_id
),
kernel_shapes AS (
  -- kernels with shapes of their own (Ascend kernel_details: `M,K;N,K`) not linked to a shaped op
  SELECT t.trace_id, t.step, t.slice_id, t.name, t.ts_ns, t.dur_ns,
         TRY_CAST('[[' || replace(regexp_replace(t.input_dims, '\s', '', 'g'), ';', '],[') || ']]' AS BIGINT[][])
           AS dims,
         string_split(regexp_replace(coalesce(t.input_types, ''), '[\r\n]', '', 'g'), ';') AS types
  FROM step_tasks t
  ANTI JOIN op_task_links o ON o.trace_id = t.trace_id AND o.slice_id = t.slice_id
  ANTI JOIN measured_kernels k ON k.trace_id = t.trace_id AND k.slice_id = t.slice_id
  WHERE t.kind = 'kernel' AND t.input_dims IS NOT NULL AND NOT starts_with(ltrim(t.input_dims), '[')
),
kernel_type_sizes AS (
  -- as type_sizes, for the dtype names kernels carry
  SELECT t.type_name, min_by(r.elem_bytes, r.rule) AS elem_bytes
  FROM (SELECT DISTINCT unnest(types) AS type_name FROM kernel_shapes) t
  LEFT JOIN elem_size_rules r ON regexp_matches(lower(t.type_name), r.pattern)
  GROUP BY t.type_name
),
kernel_shape_bytes AS (
  SELECT k.trace_id, k.step, k.slice_id, 'kernel' AS source, k.name, NULL AS op, k.ts_ns, k.dur_ns,
         -- MatMul: weight [N, K] (or [K, N]) plus input [M, K] and output [M, N]; decode attention: the step's KV
         CAST(CASE WHEN regexp_matches(k.name, '(?i)attention|attn|flash')
                     THEN s.context_len * s.kv_bytes_per_token_layer
                   ELSE (list_product(k.dims[2]) + list_product(k.dims[1])
                         + k.dims[1][1] * CASE WHEN k.dims[2][2] = k.dims[1][2] THEN k.dims[2][1] ELSE k.dims[2][2] END)
                        * ts.elem_bytes END AS BIGINT) AS bytes
  FROM kernel_shapes k
  LEFT JOIN kernel_type_sizes ts ON ts.type_name = k.types[2]
  LEFT JOIN step_model s ON s.trace_id = k.trace_id AND s.step IS NOT DISTINCT FROM k.step
  WHERE (regexp_matches(k.name, '(?i)matmul|gemm|gemv') AND len(k.dims) >= 2 AND len(k.dims[1]) = 2
         AND len(k.dims[2]) = 2 AND k.dims[1][1] <= $small_m)
     OR (regexp_matches(k.name, '(?i)attention|attn|flash') AND s.phase = 'decode')
),
steps AS (
  SELECT trace_id, step, NULL AS slice_id, 'step' AS source, coalesce(label, 'step ' || step) AS name, NULL AS op,
         device_start_ns AS ts_ns, device_busy_ns AS dur_ns,
         CAST(coalesce(weight_bytes, 0) + coalesce(context_len * kv_bytes_per_token, 0) AS BIGINT) AS bytes
  FROM step_model
  WHERE phase = 'decode' AND device_busy_ns > 0
    AND (weight_bytes IS NOT NULL OR context_len * kv_bytes_per_token IS NOT NULL)
),
counter_samples AS (
  -- bandwidth counters: those in bytes/s (the parsers normalise the unit; a percentage or a level is none);
  -- the series of a counter at one time add up (read + write, one per accelerator)
  SELECT c.trace_id, c.pid, c.name, c.ts_ns, sum(c.value) AS bytes_per_s
  FROM counters c
  WHERE c.unit = 'bytes/s'
  GROUP BY ALL
),
counter_rows AS (
  SELECT c.trace_id, w.step, NULL AS slice_id, 'counter' AS source, c.name || ' (' || c.pid || ')' AS name,
         NULL AS op, c.ts_ns,
         lead(c.ts_ns) OVER (PARTITION BY c.trace_id, c.pid, c.name ORDER BY c.ts_ns) - c.ts_ns AS dur_ns,
         CAST(NULL AS BIGINT) AS bytes, c.bytes_per_s
  FROM (SELECT c.*, c.ts_ns // s.width AS bucket FROM counter_samples c, slot_width s) c
  LEFT JOIN window_slots w ON w.trace_id = c.trace_id AND w.bucket = c.bucket AND c.ts_ns >= w.cut_ns
   AND c.ts_ns < w.next_ns
),
measured AS (
  SELECT *, bytes * 1e9 / nullif(dur_ns, 0) AS achieved_bytes_per_s FROM (
    SELECT * FROM copies
    UNION ALL SELECT * FROM measured_kernels
    UNION ALL SELECT trace_id, step, slice_id, 'kernel', name, op, ts_ns, dur_ns, bytes FROM op_tasks
    UNION ALL SELECT * FROM kernel_shape_bytes
    UNION ALL SELECT * FROM steps)
  WHERE bytes > 0 AND dur_ns > 0
  UNION ALL
  SELECT * FROM counter_rows
)
SELECT m.trace_id, t.rank, m.source, m.step, m.name, m.op, m.ts_ns, m.dur_ns, m.bytes, m.achieved_bytes_per_s,
       p.peak_bytes_per_s, p.peak_source, 100.0 * m.achieved_bytes_per_s / p.peak_bytes_per_s AS utilization_pct,
       coalesce(100.0 * m.achieved_bytes_per_s / p.peak_bytes_per_s >= $saturation_pct, false) AS saturated
FROM measured m JOIN traces t USING (trace_id) LEFT JOIN peaks p USING (trace_id)
ORDER BY m.trace_id, m.source = 'step' DESC, m.ts_ns, m.source, m.slice_id, m.name
