-- Shared by phases, bandwidth, kv_cache and spikes: the step model (one row per step: phase, tokens,
-- context length, KV bytes per token, device busy time). A query includes it right after
-- `WITH RECURSIVE` (see traceview/packs.py); it defines the CTEs profiler_steps ... step_model.
-- materialize: step_windows, slot_width, window_slots, step_tasks, shaped_ops, step_model
profiler_steps AS (
  SELECT DISTINCT ON (trace_id, step) trace_id, rank, step AS profiler_step, ts_ns, ts_ns + dur_ns AS end_ns
  FROM slices WHERE kind = 'step' AND device_type = 'cpu' AND step IS NOT NULL
  ORDER BY trace_id, step, ts_ns
),
label_parse AS (
  -- step labels of serving engines (vLLM, SGLang, TensorRT-LLM, ATOM) and user annotations named after a phase
  SELECT trace_id, rank, slice_id AS label_id, name AS label, ts_ns, ts_ns + dur_ns AS end_ns, step AS profiler_step,
         regexp_extract(name, 'context_(\d+)\(([^)]*)\)[_ ]generation_(\d+)\(([^)]*)\)', ['cr', 'ci', 'gr', 'gi']) AS v,
         regexp_extract(name, '^execute_new_(\d+)_cached_(\d+)', ['n', 'c']) AS v_old,
         regexp_extract(lower(name), '^step\[(\w+)', 1) AS sgl_mode,
         regexp_extract(name, '(?:_forward_step\s+\d+|executeStep):\s+(\d+)\s+ctx reqs,\s+(\d+)\s+gen reqs',
                        ['c', 'g']) AS trt,
         regexp_extract(lower(name), '^(prefill|decode)\[', 1) AS atom_mode,
         regexp_extract(lower(name), '^(prefill|decode|decoding|context|generation|extend)(?:[^a-z]|$)', 1)
           AS user_mode,
         TRY_CAST(nullif(regexp_extract(name, '\bbs=(\d+)', 1), '') AS BIGINT) AS kv_bs,
         TRY_CAST(nullif(regexp_extract(name, '\btoks?=(\d+)', 1), '') AS BIGINT) AS kv_toks,
         TRY_CAST(nullif(regexp_extract(name, '\bext=(\d+)', 1), '') AS BIGINT) AS kv_ext,
         TRY_CAST(nullif(regexp_extract(name, '\bdec=(\d+)', 1), '') AS BIGINT) AS kv_dec,
         TRY_CAST(nullif(regexp_extract(name, '\bctx=(\d+)', 1), '') AS BIGINT) AS kv_ctx,
         TRY_CAST(nullif(regexp_extract(name, '\bc_sk=(\d+)', 1), '') AS BIGINT) AS kv_c_sk,
         TRY_CAST(nullif(regexp_extract(name, '\bg_sk=(\d+)', 1), '') AS BIGINT) AS kv_g_sk
  FROM slices WHERE kind = 'annotation' AND device_type = 'cpu'
),
label_all AS (
  SELECT trace_id, rank, label_id, label, ts_ns, end_ns, profiler_step,
         CASE WHEN v.cr <> '' OR v_old.n <> '' THEN 'vllm' WHEN sgl_mode <> '' THEN 'sglang'
              WHEN trt.c <> '' THEN 'trtllm' WHEN atom_mode <> '' THEN 'atom' ELSE 'user' END AS dialect,
         CASE WHEN v.cr <> '' THEN CAST(v.cr AS BIGINT)
              WHEN v_old.n <> '' THEN CAST(v_old.n AS BIGINT)
              WHEN sgl_mode IN ('prefill', 'extend') THEN coalesce(kv_bs, 1)
              WHEN sgl_mode = 'mixed' THEN greatest(coalesce(kv_bs, 2) - coalesce(kv_dec, 1), 1)
              WHEN sgl_mode <> '' THEN 0
              WHEN trt.c <> '' THEN CAST(trt.c AS BIGINT)
              WHEN atom_mode = 'prefill' THEN coalesce(kv_bs, 1)
              WHEN atom_mode <> '' THEN 0
              WHEN user_mode IN ('prefill', 'context', 'extend') THEN 1 ELSE 0 END AS ctx_reqs,
         CASE WHEN v.cr <> '' THEN CAST(v.gr AS BIGINT)
              WHEN v_old.n <> '' THEN CAST(v_old.c AS BIGINT)
              WHEN sgl_mode = 'decode' THEN coalesce(kv_bs, 1)
              WHEN sgl_mode = 'mixed' THEN coalesce(kv_dec, 1)
              WHEN sgl_mode <> '' THEN 0
              WHEN trt.c <> '' THEN CAST(trt.g AS BIGINT)
              WHEN atom_mode = 'decode' THEN coalesce(kv_bs, 1)
              WHEN atom_mode <> '' THEN 0
              WHEN user_mode IN ('decode', 'decoding', 'generation') THEN 1 ELSE 0 END AS gen_reqs,
         -- vLLM writes tokens as `(8192)`, or `(sq32sk55086...)` with the detailed annotation (sk: KV tokens)
         CASE WHEN v.cr <> '' THEN TRY_CAST(coalesce(nullif(regexp_extract(v.ci, '^sq(\d+)', 1), ''),
                                                     nullif(regexp_extract(v.ci, '^(\d+)', 1), '')) AS BIGINT)
              WHEN sgl_mode IN ('prefill', 'extend') OR atom_mode = 'prefill' THEN kv_toks
              WHEN sgl_mode = 'mixed' THEN kv_ext END AS ctx_tokens,
         CASE WHEN v.cr <> '' THEN TRY_CAST(coalesce(nullif(regexp_extract(v.gi, '^sq(\d+)', 1), ''),
                                                     nullif(regexp_extract(v.gi, '^(\d+)', 1), '')) AS BIGINT)
              WHEN sgl_mode = 'decode' THEN kv_bs
              WHEN sgl_mode = 'mixed' THEN kv_dec
              WHEN atom_mode = 'decode' THEN coalesce(kv_toks, kv_bs)
              WHEN trt.c <> '' THEN CAST(trt.g AS BIGINT) END AS gen_tokens,
         CASE WHEN v.cr <> '' AND regexp_matches(v.ci || v.gi, 'sk\d')
                THEN coalesce(TRY_CAST(nullif(regexp_extract(v.ci, '^sq\d+sk(\d+)', 1), '') AS BIGINT), 0)
                   + coalesce(TRY_CAST(nullif(regexp_extract(v.gi, '^sq\d+sk(\d+)', 1), '') AS BIGINT), 0)
              WHEN sgl_mode <> '' AND (kv_c_sk IS NOT NULL OR kv_g_sk IS NOT NULL)
                THEN coalesce(kv_c_sk, 0) + coalesce(kv_g_sk, 0)
              WHEN atom_mode = 'prefill' THEN kv_ctx END AS label_context_len,
         sgl_mode = 'idle' AS idle
  FROM label_parse
  WHERE v.cr <> '' OR v_old.n <> '' OR sgl_mode <> '' OR trt.c <> '' OR atom_mode <> '' OR user_mode <> ''
),
label_nesting AS (
  -- a label inside an earlier one that has not ended yet (SGLang's step[DECODE bs=32] inside an execute_... range)
  -- belongs to that one's step: the running end of the labels before it reaches past its own end
  SELECT *, coalesce(max(end_ns) OVER (PARTITION BY trace_id ORDER BY ts_ns, end_ns DESC, label_id
                                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) >= end_ns, false) AS nested
  FROM label_all
),
label_groups AS (
  SELECT *, sum(CASE WHEN nested THEN 0 ELSE 1 END)
              OVER (PARTITION BY trace_id ORDER BY ts_ns, end_ns DESC, label_id ROWS UNBOUNDED PRECEDING) AS label_group
  FROM label_nesting
),
labels AS (
  -- one label per step: the outermost label's window, the facts of an engine's label before a user annotation's
  -- (the innermost engine label first: it names the step the engine ran)
  SELECT * REPLACE (first_value(ts_ns) OVER g AS ts_ns, first_value(end_ns) OVER g AS end_ns,
                    first_value(profiler_step) OVER g AS profiler_step)
  FROM label_groups
  WINDOW g AS (PARTITION BY trace_id, label_group ORDER BY nested, ts_ns, end_ns DESC, label_id
               ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
  QUALIFY row_number() OVER (PARTITION BY trace_id, label_group
                             ORDER BY dialect = 'user', nested DESC, ts_ns DESC, label_id) = 1
),
label_counts AS (
  SELECT trace_id, count(profiler_step) = count(*) AND count(DISTINCT profiler_step) = count(*) AS one_per_profiler_step
  FROM labels GROUP BY ALL
),
step_windows AS (
  -- ProfilerStep#N spans, each with the label inside it (when every label sits in its own ProfilerStep)
  SELECT p.trace_id, p.rank, p.profiler_step AS step, p.ts_ns, p.end_ns, l.label_id, 'profiler_step' AS window_kind
  FROM profiler_steps p
  LEFT JOIN label_counts c USING (trace_id)
  LEFT JOIN labels l ON l.trace_id = p.trace_id AND l.profiler_step = p.profiler_step
  WHERE coalesce(c.one_per_profiler_step, true)
  UNION ALL
  -- otherwise the labels themselves, numbered in time order
  SELECT l.trace_id, l.rank, row_number() OVER (PARTITION BY l.trace_id ORDER BY l.ts_ns, l.label_id), l.ts_ns,
         l.end_ns, l.label_id, 'label'
  FROM labels l JOIN label_counts c USING (trace_id)
  WHERE NOT c.one_per_profiler_step
  UNION ALL
  -- neither: the whole trace is one step (step null)
  SELECT trace_id, any_value(rank), NULL, min(ts_ns), max(ts_ns + dur_ns) + 1, NULL, 'trace'
  FROM slices
  WHERE trace_id NOT IN (SELECT trace_id FROM profiler_steps) AND trace_id NOT IN (SELECT trace_id FROM labels)
  GROUP BY trace_id
),
window_cuts AS (
  -- A time falls in the step windows that contain it; windows may nest or overlap. Cut each trace's timeline at
  -- every window start and end: the windows covering the piece from one cut to the next are the same all along it.
  -- window_slots lists each covered piece, once per covering window, under every time bucket it touches, so
  -- callers find the windows of a time with an equi-join on (trace, bucket) and a check that the time is in the
  -- piece, instead of a range join of all their rows with all windows.
  SELECT trace_id, ts_ns AS cut_ns FROM step_windows WHERE ts_ns IS NOT NULL
  UNION
  SELECT trace_id, end_ns FROM step_windows WHERE end_ns IS NOT NULL
),
slot_width AS (
  -- bucket width: the widest mean piece of a trace, so a trace's pieces touch about two buckets each
  SELECT greatest(1, max(span_ns // n)) AS width
  FROM (SELECT trace_id, max(cut_ns) - min(cut_ns) AS span_ns, count(*) AS n FROM window_cuts GROUP BY ALL)
),
window_slots AS (
  SELECT p.trace_id, p.cut_ns, p.next_ns, w.rank, w.step, w.ts_ns, w.end_ns, w.label_id,
         unnest(range(p.cut_ns // p.width, (p.next_ns - 1) // p.width + 1)) AS bucket
  FROM (SELECT trace_id, cut_ns, lead(cut_ns) OVER (PARTITION BY trace_id ORDER BY cut_ns) AS next_ns, s.width
        FROM window_cuts, slot_width s) p
  JOIN step_windows w ON w.trace_id = p.trace_id AND p.cut_ns >= w.ts_ns AND p.cut_ns < w.end_ns
  WHERE p.next_ns IS NOT NULL
),
-- @include _launches.sql
,
step_tasks AS (
  -- device tasks in the step their launch falls in; a task with no launch record keeps the ProfilerStep the parser
  -- gave it (the step whose window holds it), else takes the window holding its own start; step null outside
  SELECT d.trace_id, coalesce(d.parsed_step, w.step) AS step, d.slice_id, d.name, d.kind, d.device_id, d.stream,
         d.ts_ns, d.dur_ns, d.correlation, d.input_dims, d.input_types,
         d.launch_ts_ns, d.launch_dur_ns, d.launch_parent_id
  FROM (SELECT d.trace_id, d.slice_id, d.name, d.kind, d.device_id, d.stream, d.ts_ns, d.dur_ns, d.correlation,
               d.input_dims, d.input_types,
               l.launch_ts_ns, l.launch_dur_ns, l.launch_parent_id,
               CASE WHEN l.launch_ts_ns IS NULL AND p.trace_id IS NOT NULL THEN d.step END AS parsed_step,
               coalesce(l.launch_ts_ns, d.ts_ns) AS at_ns, coalesce(l.launch_ts_ns, d.ts_ns) // s.width AS bucket
        FROM device_tasks d
        LEFT JOIN launches l ON l.trace_id = d.trace_id AND l.correlation = d.correlation
        LEFT JOIN (SELECT DISTINCT trace_id FROM step_windows WHERE window_kind = 'profiler_step') p
          ON p.trace_id = d.trace_id
        CROSS JOIN slot_width s) d
  LEFT JOIN window_slots w ON d.parsed_step IS NULL AND w.trace_id = d.trace_id AND w.bucket = d.bucket
   AND d.at_ns >= w.cut_ns AND d.at_ns < w.next_ns
),
shaped_ops AS (
  -- framework ops with recorded shapes: Kineto writes JSON ([[2,4096],[4096,6144]]), torch_npu `2,4096;4096,6144`
  SELECT w.trace_id, w.step, o.slice_id, o.parent_id, o.name, o.ts_ns, o.dur_ns, o.pid, o.tid,
         TRY_CAST(CASE WHEN starts_with(ltrim(o.input_dims), '[') THEN o.input_dims
                       ELSE '[[' || replace(regexp_replace(o.input_dims, '\s', '', 'g'), ';', '],[') || ']]' END
                  AS BIGINT[][]) AS dims,
         CASE WHEN starts_with(ltrim(o.input_types), '[') THEN from_json(o.input_types, '["VARCHAR"]')
              ELSE string_split(regexp_replace(coalesce(o.input_types, ''), '[\r\n]', '', 'g'), ';') END AS types,
         list_filter(coalesce(from_json(json_extract(o.args, '$."Concrete Inputs"'), '["VARCHAR"]'), []),
                     lambda c: regexp_full_match(c, '-?\d+')) AS int_args
  FROM (SELECT o.*, o.ts_ns // s.width AS bucket FROM ops o, slot_width s) o
  JOIN window_slots w ON w.trace_id = o.trace_id AND w.bucket = o.bucket AND o.ts_ns >= w.cut_ns AND o.ts_ns < w.next_ns
  WHERE o.input_dims IS NOT NULL
),
elem_size_rules AS (
  -- bytes per element from a dtype name (lower case; the first rule that matches wins), for framework dtypes
  -- (c10::BFloat16, float, ...) and kernel dtypes (DT_BF16, FLOAT, INT32, ...) alike
  SELECT * FROM (VALUES (1, 'float8|fp8|e4m3|e5m2|int8|unsigned char|bool|byte', 1),
                        (2, 'bf16|bfloat16|half|float16|fp16|int16|short', 2),
                        (3, 'double|float64|fp64|long|int64|complex', 8),
                        (4, 'float|int', 4)) r(rule, pattern, elem_bytes)
),
type_sizes AS (
  SELECT t.type_name, min_by(r.elem_bytes, r.rule) AS elem_bytes
  FROM (SELECT DISTINCT unnest(types) AS type_name FROM shaped_ops) t
  LEFT JOIN elem_size_rules r ON regexp_matches(lower(t.type_name), r.pattern)
  GROUP BY t.type_name
),
attention_calls AS (
  SELECT o.*,
         CASE WHEN regexp_matches(o.name, '^aten::_?scaled_dot_product') THEN 'bhsd'
              WHEN regexp_matches(o.name, '(?i)_flash_attention_forward|_efficient_attention_forward|flash_attn_fo')
                THEN 'bshd'
              ELSE 'varlen' END AS layout,
         o.dims[1] AS q, o.dims[2] AS k,
         list_filter(o.dims[5:], lambda x: len(x) = 2)[1] AS block_table,
         list_filter(o.dims[5:], lambda x: len(x) = 1)[1] AS cu_seqlens
  FROM shaped_ops o
  WHERE regexp_matches(o.name, '(?i)scaled_dot_product|varlen_fwd|fa3_c::fwd|flash_attn|unified_attention|'
                                || 'fused_infer_attention|incre_flash_attention|prompt_flash_attention|paged_attention|'
                                || 'npu_fusion_attention|_flash_attention_forward|_efficient_attention_forward|mha_')
    -- the outermost attention op only (SDPA calls a backend op with the same shapes)
    AND NOT EXISTS (SELECT 1 FROM shaped_ops p WHERE p.trace_id = o.trace_id AND p.slice_id = o.parent_id
                    AND regexp_matches(p.name, '(?i)scaled_dot_product|attention|flash_attn|varlen_fwd|fa3_c::|mha_'))
),
attention_shapes AS (
  SELECT a.*,
         CASE layout WHEN 'bhsd' THEN q[1] * q[3] WHEN 'bshd' THEN q[1] * q[2] ELSE q[1] END AS q_rows,
         greatest(CASE layout WHEN 'varlen' THEN coalesce(block_table[1], cu_seqlens[1] - 1) ELSE q[1] END, 0) AS reqs,
         -- flash-attn varlen without a block table gets the packed keys of all requests: [keys, kv_heads, head_dim]
         layout = 'varlen' AND block_table IS NULL AND len(k) = 3 AND regexp_matches(name, '(?i)varlen|flash_attn')
           AS packed_keys,
         CASE layout WHEN 'bhsd' THEN q[3] WHEN 'bshd' THEN q[2] ELSE TRY_CAST(int_args[1] AS BIGINT) END AS max_q,
         CASE layout WHEN 'bhsd' THEN k[3] WHEN 'bshd' THEN k[2] ELSE TRY_CAST(int_args[2] AS BIGINT) END AS max_k,
         -- the paged KV cache: [blocks, block_size, kv_heads, head_dim], [blocks, block_size, kv_heads*head_dim]
         -- or vLLM's older [blocks, kv_heads, head_dim/x, block_size, x]; without a block table k holds the keys
         CASE WHEN layout = 'bhsd' THEN k[2] * k[4] WHEN layout = 'bshd' THEN k[3] * k[4]
              WHEN block_table IS NULL THEN CAST(list_product(k[2:]) AS BIGINT)
              WHEN len(k) = 5 THEN k[2] * k[3] * k[5] WHEN len(k) = 4 THEN k[3] * k[4] ELSE k[3] END AS kv_width,
         CASE WHEN layout = 'bhsd' THEN k[2] WHEN layout = 'bshd' THEN k[3]
              WHEN block_table IS NULL AND len(k) = 3 THEN k[2] WHEN len(k) = 5 THEN k[2] WHEN len(k) = 4 THEN k[3] END
           AS kv_heads,
         CASE WHEN layout IN ('bhsd', 'bshd') THEN k[4] WHEN block_table IS NULL AND len(k) = 3 THEN k[3]
              WHEN len(k) = 5 THEN k[3] * k[5] WHEN len(k) = 4 THEN k[4] END AS head_dim,
         CASE WHEN layout <> 'varlen' OR block_table IS NULL THEN NULL WHEN len(k) = 5 THEN k[4] ELSE k[2] END
           AS block_size,
         ts.elem_bytes AS kv_elem_bytes
  FROM attention_calls a LEFT JOIN type_sizes ts ON ts.type_name = a.types[2]
),
kv_expand AS (
  -- GQA before SDPA: the KV heads repeated up to the query heads (repeat_interleave of [B, kv_heads, S, D],
  -- expand of [B, kv_heads, 1, S, D])
  SELECT trace_id, step, x[len(x) - 1] AS seq_len, x[len(x)] AS head_dim, min(x[2]) AS kv_heads
  FROM (SELECT trace_id, step, dims[1] AS x FROM shaped_ops
        WHERE (name = 'aten::repeat_interleave' AND len(dims[1]) = 4)
           OR (name = 'aten::expand' AND len(dims[1]) = 5 AND dims[1][3] = 1))
  GROUP BY ALL
),
attention_steps AS (
  SELECT a.trace_id, a.step, count(*) AS attention_ops, max(q_rows) AS q_rows, max(reqs) AS reqs, max(max_q) AS max_q,
         max(max_k) AS max_k, max(coalesce(e.kv_heads, a.kv_heads)) AS kv_heads, max(a.head_dim) AS head_dim,
         max(coalesce(e.kv_heads * a.head_dim, a.kv_width)) AS kv_width, max(kv_elem_bytes) AS kv_elem_bytes,
         -- KV tokens attended to, summed over requests: exact for dense layouts, one request, or packed keys
         max(CASE WHEN layout = 'bhsd' THEN q[1] * k[3] WHEN layout = 'bshd' THEN q[1] * k[2]
                  WHEN packed_keys THEN k[1]
                  WHEN reqs = 1 AND max_k IS NOT NULL THEN max_k END) AS ctx_exact,
         -- otherwise bounds from the longest context (max_seqlen_k, else the block table)
         max(CASE WHEN max_k IS NOT NULL THEN max_k + reqs - 1
                  WHEN block_table IS NOT NULL THEN (block_table[2] - 1) * block_size + reqs END) AS ctx_lo,
         max(reqs * coalesce(max_k, block_table[2] * block_size)) AS ctx_hi
  FROM attention_shapes a
  LEFT JOIN kv_expand e ON e.trace_id = a.trace_id AND e.step IS NOT DISTINCT FROM a.step AND a.layout = 'bhsd'
   AND e.seq_len = a.k[3] AND e.head_dim = a.k[4] AND e.kv_heads < a.k[2]
  GROUP BY ALL
),
kv_writes AS (
  -- KV-cache writes (reshape_and_cache[_flash], torch_npu _npu_reshape_and_cache, ...): key [tokens, kv_heads,
  -- head_dim], in the cache's own element type (fp8 caches)
  SELECT o.trace_id, o.step, count(*) AS kv_write_ops, max(o.dims[1][2]) AS kv_heads, max(o.dims[1][3]) AS head_dim,
         max(ts.elem_bytes) AS elem_bytes
  FROM shaped_ops o LEFT JOIN type_sizes ts ON ts.type_name = o.types[3]
  WHERE regexp_matches(o.name, '(?i)reshape_and_cache|scatter_pa_kv_cache|concat_and_cache') AND len(o.dims[1]) = 3
  GROUP BY ALL
),
gemm_calls AS (
  -- GEMMs with a 2-D weight, innermost only (aten::linear > aten::matmul > aten::mm counts once)
  SELECT o.trace_id, o.step, o.slice_id, o.name,
         CASE WHEN o.name = 'aten::addmm' THEN o.dims[2] ELSE o.dims[1] END AS x,
         CASE WHEN o.name = 'aten::addmm' THEN o.dims[3] ELSE o.dims[2] END AS w,
         CASE WHEN o.name = 'aten::addmm' THEN o.types[3] ELSE o.types[2] END AS w_type
  FROM shaped_ops o
  WHERE o.name IN ('aten::mm', 'aten::addmm', 'aten::matmul', 'aten::linear', 'aten::_scaled_mm',
                   'npu::npu_quant_matmul')
    AND NOT EXISTS (SELECT 1 FROM shaped_ops c WHERE c.trace_id = o.trace_id AND c.parent_id = o.slice_id
                    AND c.name IN ('aten::mm', 'aten::addmm', 'aten::matmul', 'aten::linear', 'aten::_scaled_mm',
                                   'npu::npu_quant_matmul'))
),
gemm_steps AS (
  SELECT g.trace_id, g.step, count(*) AS gemms, CAST(min(list_product(x[1:len(x) - 1])) AS BIGINT) AS min_m,
         CAST(max(list_product(x[1:len(x) - 1])) AS BIGINT) AS max_m,
         CAST(sum(list_product(w) * ts.elem_bytes) AS BIGINT) AS weight_bytes
  FROM gemm_calls g LEFT JOIN type_sizes ts ON ts.type_name = g.w_type
  WHERE len(w) = 2 AND len(x) >= 2
  GROUP BY ALL
),
step_task_names AS (
  SELECT trace_id, step, name, count(*) FILTER (WHERE kind = 'kernel') AS kernels FROM step_tasks GROUP BY ALL
),
task_name_kinds AS (
  -- the name patterns, matched once per distinct name
  SELECT name, regexp_matches(name, '(?i)splitkv|paged_?attention|batchdecode|decode|gemv|incre_flash') AS decode,
         regexp_matches(name, '(?i)flash_fwd_kernel|batchprefill|prefill|unpadflash|persistentcontext|prompt_flash')
           AS prefill,
         regexp_matches(name, '(?i)flash|fmha|attention|attn|splitkv') AS attention
  FROM (SELECT DISTINCT name FROM step_task_names WHERE name IS NOT NULL)
),
kernel_steps AS (
  SELECT s.trace_id, s.step, CAST(sum(s.kernels) AS BIGINT) AS kernels, bool_or(n.decode) AS decode_kernels,
         bool_or(n.prefill) AS prefill_kernels, bool_or(n.attention) AS attention_kernels
  FROM step_task_names s LEFT JOIN task_name_kinds n ON n.name = s.name
  GROUP BY s.trace_id, s.step
),
capture_steps AS (
  -- steps that capture a CUDA/HIP graph (vLLM's and SGLang's capture runs: dummy batches, recorded, not run)
  SELECT DISTINCT w.trace_id, w.step
  FROM (SELECT r.*, r.ts_ns // s.width AS bucket FROM slices r, slot_width s
        WHERE r.kind IN ('runtime', 'driver')
          AND regexp_matches(r.name, '^(cuda|hip|cu)(StreamBeginCapture|StreamEndCapture|GraphInstantiate)')) r
  JOIN window_slots w ON w.trace_id = r.trace_id AND w.bucket = r.bucket AND r.ts_ns >= w.cut_ns AND r.ts_ns < w.next_ns
),
training_steps AS (
  -- steps that run a backward pass are training, whatever their shapes
  SELECT DISTINCT w.trace_id, w.step
  FROM (SELECT o.*, o.ts_ns // s.width AS bucket FROM ops o, slot_width s) o
  JOIN window_slots w ON w.trace_id = o.trace_id AND w.bucket = o.bucket AND o.ts_ns >= w.cut_ns AND o.ts_ns < w.next_ns
  WHERE starts_with(o.name, 'autograd::engine::evaluate_function')
),
step_facts AS (
  SELECT w.trace_id, w.rank, w.step, w.ts_ns, w.end_ns, l.label, l.dialect, l.ctx_reqs, l.gen_reqs, l.ctx_tokens,
         l.gen_tokens, l.label_context_len, l.idle, a.attention_ops, a.q_rows, a.reqs, a.max_q, a.max_k,
         a.ctx_exact, a.ctx_lo, a.ctx_hi, g.gemms, g.min_m, g.max_m, g.weight_bytes, k.kernels,
         coalesce(a.attention_ops, kw.kv_write_ops) AS layers,
         coalesce(kw.kv_heads, a.kv_heads) AS kv_heads, coalesce(kw.head_dim, a.head_dim) AS head_dim,
         coalesce(kw.kv_heads * kw.head_dim, a.kv_width) AS kv_width,
         coalesce(kw.elem_bytes, a.kv_elem_bytes) AS kv_elem_bytes,
         k.decode_kernels, k.prefill_kernels, k.attention_kernels,
         CASE WHEN l.label_id IS NOT NULL AND (l.ctx_reqs > 0 OR l.gen_reqs > 0 OR l.idle)
                THEN CASE WHEN l.ctx_reqs > 0 AND l.gen_reqs > 0 THEN 'mixed' WHEN l.ctx_reqs > 0 THEN 'prefill'
                          WHEN l.gen_reqs > 0 THEN 'decode' ELSE 'idle' END END AS label_phase,
         -- q rows vs requests: one query row per request is decode; the longest query plus one row for each
         -- other request is a prefill chunk batched with decodes
         CASE WHEN a.q_rows IS NULL OR (a.max_q IS NULL AND a.reqs IS NULL) THEN NULL
              WHEN a.max_q = 1 OR (a.max_q IS NULL AND a.q_rows <= a.reqs) THEN 'decode'
              WHEN a.reqs > 1 AND a.max_q IS NOT NULL AND a.q_rows - a.max_q = a.reqs - 1 THEN 'mixed'
              ELSE 'prefill' END AS attention_phase,
         -- every GEMM (LM head included) has the same rows: each request brings one token
         CASE WHEN g.min_m IS NOT NULL AND (a.attention_ops > 0 OR k.attention_kernels)
              THEN CASE WHEN g.min_m = g.max_m THEN 'decode' ELSE 'prefill' END END AS gemm_phase,
         CASE WHEN k.decode_kernels AND k.prefill_kernels THEN 'mixed' WHEN k.decode_kernels THEN 'decode'
              WHEN k.prefill_kernels THEN 'prefill' END AS kernel_phase,
         t.trace_id IS NOT NULL AS training, cs.trace_id IS NOT NULL AS capture,
         CASE WHEN l.label_id IS NOT NULL
                THEN CASE l.dialect WHEN 'vllm' THEN 'vllm annotation' WHEN 'sglang' THEN 'sglang step[...]'
                                    WHEN 'trtllm' THEN 'trtllm annotation' WHEN 'atom' THEN 'atom annotation'
                                    ELSE 'user annotation' END
              WHEN w.window_kind = 'profiler_step' THEN 'ProfilerStep#N' ELSE 'whole trace' END AS label_source
  FROM step_windows w
  LEFT JOIN labels l ON l.trace_id = w.trace_id AND l.label_id = w.label_id
  LEFT JOIN attention_steps a ON a.trace_id = w.trace_id AND a.step IS NOT DISTINCT FROM w.step
  LEFT JOIN gemm_steps g ON g.trace_id = w.trace_id AND g.step IS NOT DISTINCT FROM w.step
  LEFT JOIN kernel_steps k ON k.trace_id = w.trace_id AND k.step IS NOT DISTINCT FROM w.step
  LEFT JOIN kv_writes kw ON kw.trace_id = w.trace_id AND kw.step IS NOT DISTINCT FROM w.step
  LEFT JOIN training_steps t ON t.trace_id = w.trace_id AND t.step IS NOT DISTINCT FROM w.step
  LEFT JOIN capture_steps cs ON cs.trace_id = w.trace_id AND cs.step IS NOT DISTINCT FROM w.step
),
step_tokens AS (
  SELECT *, row_number() OVER (PARTITION BY trace_id ORDER BY ts_ns) AS seq,
         coalesce(CASE WHEN ctx_tokens IS NOT NULL OR gen_tokens IS NOT NULL
                       THEN coalesce(ctx_tokens, 0) + coalesce(gen_tokens, 0) END, q_rows, max_m) AS tokens
  FROM step_facts
),
context_walk AS (
  -- without exact KV lengths: the KV tokens carried over from the previous step plus this step's tokens, kept
  -- within the bounds the shapes give (a new batch falls back to its upper bound)
  SELECT trace_id, seq, least(greatest(coalesce(tokens, 0), ctx_lo), ctx_hi) AS est
  FROM step_tokens WHERE seq = 1
  UNION ALL
  SELECT s.trace_id, s.seq, least(greatest(w.est + coalesce(s.tokens, 0), s.ctx_lo), s.ctx_hi)
  FROM context_walk w JOIN step_tokens s ON s.trace_id = w.trace_id AND s.seq = w.seq + 1
),
busy_reach AS (
  SELECT trace_id, step, device_id, ts_ns AS s, ts_ns + dur_ns AS e,
         max(ts_ns + dur_ns) OVER (PARTITION BY trace_id, step, device_id ORDER BY ts_ns, dur_ns
                                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach
  FROM step_tasks WHERE kind IN ('kernel', 'comm')
),
step_busy AS (
  -- device busy time of each step: the union of its kernels' intervals, per device, summed. In start order, a
  -- kernel adds the part of its interval past everything that started before it (busy_reach.reach).
  SELECT trace_id, step, CAST(sum(greatest(e - greatest(s, coalesce(reach, s)), 0)) AS BIGINT) AS device_busy_ns,
         min(s) AS device_start_ns, max(e) AS device_end_ns
  FROM busy_reach GROUP BY ALL
),
step_active AS (
  -- the step's active time: from its first device task (copies and DMA included) to the end of its last
  SELECT trace_id, step, max(ts_ns + coalesce(dur_ns, 0)) - min(ts_ns) AS active_ns
  FROM step_tasks WHERE ts_ns IS NOT NULL GROUP BY ALL
),
step_model AS (
  SELECT s.*, b.device_busy_ns, b.device_start_ns, b.device_end_ns,
         act.active_ns,
         CASE WHEN capture THEN 'capture' WHEN label_phase IS NULL AND training THEN 'training'
              ELSE coalesce(label_phase, attention_phase, gemm_phase, kernel_phase, 'unknown') END AS phase,
         CASE WHEN capture THEN 'ops' WHEN label_phase IS NOT NULL THEN 'label' WHEN training THEN 'ops'
              WHEN attention_phase IS NOT NULL OR gemm_phase IS NOT NULL THEN 'shapes'
              WHEN kernel_phase IS NOT NULL THEN 'kernels' END AS source,
         coalesce(label_context_len, ctx_exact, CASE WHEN ctx_hi IS NOT NULL THEN c.est END) AS context_len,
         CASE WHEN label_context_len IS NOT NULL THEN 'label' WHEN ctx_exact IS NOT NULL THEN 'shapes'
              WHEN ctx_hi IS NOT NULL THEN 'estimate' END AS context_source,
         2 * kv_width * kv_elem_bytes AS kv_bytes_per_token_layer,
         2 * kv_width * kv_elem_bytes * layers AS kv_bytes_per_token
  FROM step_tokens s
  LEFT JOIN context_walk c USING (trace_id, seq)
  LEFT JOIN step_busy b ON b.trace_id = s.trace_id AND b.step IS NOT DISTINCT FROM s.step
  LEFT JOIN step_active act ON act.trace_id = s.trace_id AND act.step IS NOT DISTINCT FROM s.step
)
