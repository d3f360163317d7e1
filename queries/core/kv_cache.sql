-- title: KV cache
-- description: Per trace and step: device memory from the allocator events (allocated and reserved at the step's start and end, the peak within it, growth against the previous step's end) on the device with the most memory, and the KV cache from attention input shapes: KV length (tokens attended to, summed over requests; see phases), KV bytes per token per layer (2 * kv_heads * head_dim * element bytes, from the key tensor of the KV-cache write op, else the attention op's K cache [blocks, block_size, kv_heads, head_dim] or SDPA K [B, H_kv, S, D] with GQA expansion undone) and in total (times layers = attention ops per step), the KV footprint and the KV bytes the step adds. preallocated is true when allocated memory stays flat while the shapes say the cache grows (vLLM and SGLang reserve the KV pool up front); allocator_tracks_kv when allocated memory grows by the step's new tokens times the KV bytes per token.
-- units: allocated_start=bytes, allocated_end=bytes, allocated_peak=bytes, allocated_growth=bytes
-- units: reserved_start=bytes, reserved_end=bytes, reserved_peak=bytes, reserved_growth=bytes
-- units: kv_bytes_per_token_layer=bytes, kv_bytes_per_token=bytes, reserved_peak_pct_of_hbm=% of HBM capacity
-- order: allocated_peak desc
-- evidence: memory_events, kv_bytes_per_token, kv_footprint_bytes, kv_new_bytes
-- empty: no allocator events and no attention kernels with KV-cache shapes (e.g. a training trace without memory profiling)
-- finding: peak_kv_step AND preallocated => info: rank {rank}: KV cache is pre-allocated (allocated memory flat around {allocated_end:bytes}); from shapes the KV in use peaks at {kv_footprint_bytes:bytes}[ in step {step}] ({context_len} tokens x {kv_bytes_per_token} bytes per token)
-- finding: peak_kv_step AND NOT coalesce(preallocated, false) AND kv_footprint_bytes IS NOT NULL => info: rank {rank}: KV cache peaks at {kv_footprint_bytes:bytes}[ in step {step}] ({context_len} tokens x {kv_bytes_per_token} bytes per token, {layers} layers)
-- finding: reserved_peak_pct_of_hbm >= 95 => warning: rank {rank}[ step {step}]: reserved device memory reaches {reserved_peak_pct_of_hbm:.1f}% of HBM
WITH RECURSIVE
-- @include _step_model.sql
,
memory_devices AS (
  -- per trace one allocator track: an accelerator before host memory, then the track (pid: the process, or the
  -- torch_npu component APP / PTA / PTA+GE) with the most allocated totals, then the most memory
  SELECT DISTINCT ON (trace_id) trace_id, device_type, device_id, pid
  FROM memory
  GROUP BY trace_id, device_type, device_id, pid
  ORDER BY trace_id, device_type = 'cpu', count(total_allocated) DESC,
           max(coalesce(total_allocated, total_reserved)) DESC NULLS LAST
),
memory_series AS (
  -- seq: the events' order in the trace, which decides between events of the same time
  SELECT m.trace_id, m.ts_ns, m.device_type, m.device_id, m.total_allocated AS allocated, m.total_reserved AS reserved,
         m.total_allocated - coalesce(m.bytes, 0) AS allocated_before, m.bytes, m.seq
  FROM (SELECT *, row_number() OVER () AS seq FROM memory) m
  JOIN memory_devices d ON d.trace_id = m.trace_id AND d.device_type = m.device_type
   AND d.device_id IS NOT DISTINCT FROM m.device_id AND d.pid IS NOT DISTINCT FROM m.pid
),
memory_states AS (
  -- the allocator's state after the last event of each time
  SELECT trace_id, ts_ns, arg_max(allocated, seq) AS allocated, arg_max(reserved, seq) AS reserved
  FROM memory_series GROUP BY ALL
),
memory_inside AS (
  SELECT w.trace_id, w.step, count(*) AS memory_events, max(m.allocated) AS allocated_max_inside,
         max(m.reserved) AS reserved_max_inside,
         -- before the first event; at one time an allocation or free (bytes known) before a snapshot of totals
         first(m.allocated_before ORDER BY m.ts_ns, m.bytes IS NULL, m.seq) AS allocated_at_first_event
  FROM step_windows w
  JOIN memory_series m ON m.trace_id = w.trace_id AND m.ts_ns >= w.ts_ns AND m.ts_ns < w.end_ns
  GROUP BY ALL
),
step_memory AS (
  -- the allocator's state entering and leaving each step (last event before), and the highest value inside
  SELECT w.trace_id, w.step, d.device_type, d.device_id, coalesce(i.memory_events, 0) AS memory_events,
         b.allocated AS allocated_before_step, i.allocated_at_first_event, e.allocated AS allocated_end,
         i.allocated_max_inside, b.reserved AS reserved_start, e.reserved AS reserved_end, i.reserved_max_inside
  FROM step_windows w
  JOIN memory_devices d USING (trace_id)
  ASOF LEFT JOIN memory_states b ON b.trace_id = w.trace_id AND w.ts_ns > b.ts_ns
  ASOF LEFT JOIN memory_states e ON e.trace_id = w.trace_id AND w.end_ns > e.ts_ns
  LEFT JOIN memory_inside i ON i.trace_id = w.trace_id AND i.step IS NOT DISTINCT FROM w.step
),
hbm AS (
  SELECT d.trace_id, s.hbm_bytes FROM trace_devices d JOIN device_specs s ON s.name = d.spec
),
kv_steps AS (
  SELECT s.trace_id, s.rank, s.step, s.phase, s.ts_ns, s.end_ns - s.ts_ns AS dur_ns, s.seq,
         m.device_type, m.device_id, m.memory_events,
         coalesce(m.allocated_before_step, m.allocated_at_first_event) AS allocated_start,
         m.allocated_end,
         greatest(coalesce(m.allocated_before_step, m.allocated_at_first_event), m.allocated_max_inside)
           AS allocated_peak,
         coalesce(m.reserved_start, m.reserved_max_inside) AS reserved_start, m.reserved_end,
         greatest(m.reserved_start, m.reserved_max_inside) AS reserved_peak,
         s.tokens, s.context_len, s.context_source, s.kv_heads, s.head_dim, s.kv_elem_bytes AS kv_dtype_bytes,
         s.layers, s.kv_bytes_per_token_layer, s.kv_bytes_per_token,
         s.context_len * s.kv_bytes_per_token AS kv_footprint_bytes,
         s.tokens * s.kv_bytes_per_token AS kv_new_bytes,
         100.0 * greatest(m.reserved_start, m.reserved_max_inside) / nullif(h.hbm_bytes, 0) AS reserved_peak_pct_of_hbm
  FROM step_model s
  LEFT JOIN step_memory m ON m.trace_id = s.trace_id AND m.step IS NOT DISTINCT FROM s.step
  LEFT JOIN hbm h ON h.trace_id = s.trace_id
),
kv_growth AS (
  SELECT *,
         allocated_end - lag(allocated_end) OVER (PARTITION BY trace_id ORDER BY ts_ns) AS allocated_growth,
         reserved_end - lag(reserved_end) OVER (PARTITION BY trace_id ORDER BY ts_ns) AS reserved_growth
  FROM kv_steps
),
kv_verdict AS (
  -- does allocated memory follow the KV cache? compare each step's growth with the bytes its new tokens add
  SELECT trace_id,
         count(*) FILTER (WHERE kv_new_bytes > 0 AND allocated_growth IS NOT NULL) AS judged_steps,
         count(*) FILTER (WHERE kv_new_bytes > 0 AND abs(allocated_growth - kv_new_bytes) <= 0.1 * kv_new_bytes)
           AS matching_steps,
         count(*) FILTER (WHERE kv_new_bytes > 0 AND abs(allocated_growth) < 0.5 * kv_new_bytes) AS flat_steps
  FROM kv_growth GROUP BY ALL
)
SELECT g.trace_id, g.rank, g.step, g.phase, g.ts_ns, g.dur_ns, g.device_type, g.device_id, g.memory_events,
       g.allocated_start, g.allocated_end, g.allocated_peak, g.allocated_growth,
       g.reserved_start, g.reserved_end, g.reserved_peak, g.reserved_growth, g.reserved_peak_pct_of_hbm,
       g.tokens, g.context_len, g.context_source, g.kv_heads, g.head_dim, g.kv_dtype_bytes, g.layers,
       g.kv_bytes_per_token_layer, g.kv_bytes_per_token, g.kv_footprint_bytes, g.kv_new_bytes,
       CASE WHEN v.judged_steps > 0 THEN v.flat_steps = v.judged_steps AND v.matching_steps = 0 END AS preallocated,
       CASE WHEN v.judged_steps > 0 THEN v.matching_steps >= 0.5 * v.judged_steps END AS allocator_tracks_kv,
       g.kv_footprint_bytes IS NOT NULL
         AND row_number() OVER (PARTITION BY g.trace_id ORDER BY g.kv_footprint_bytes DESC NULLS LAST, g.ts_ns) = 1
         AS peak_kv_step
FROM kv_growth g LEFT JOIN kv_verdict v USING (trace_id)
ORDER BY g.trace_id, g.ts_ns
