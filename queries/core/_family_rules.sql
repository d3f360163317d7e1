-- The kernel family rule set: the one place that decides a device task's family. kernel_families.sql includes
-- it; `traceview throughput` (its attention/gemm/comm/other mix) and `traceview diff --by family` read
-- `task_families` through it, so the three always agree.
-- A task belongs to the family of the first rule (lowest priority) that matches it; a rule matches when the
-- task's kind is one of its `kinds` (NULL: any kind) and its name matches its `pattern` (NULL: any name).
-- A task no rule matches is 'other'. Each name pattern is pinned to real kernel names in
-- tests/test_kernel_families.py: change a rule there first.
-- Communication (rules 2-4) comes before every compute family, so a collective is never counted as compute:
-- NCCL/RCCL (ncclKernel_*, ncclDevKernel_*), HCCL (hcom_*), MSCCL and MSCCL++ (mscclKernel_*,
-- mscclpp::*), torch symmetric memory (multimem_*, allToAllV), vLLM/SGLang/aiter custom all-reduce
-- (cross_device_reduce_1stage/2stage), TensorRT-LLM/FlashInfer/quick all-reduce (*AllReduce*, allreduce_*),
-- DeepEP (deep_ep::intranode::/internode::/internode_ll:: dispatch, combine, notify) and NVSHMEM (nvshmemi_*,
-- the *_on_stream_kernel collectives).
family_rules(priority, family, kinds, pattern) AS (
  VALUES
    (1, 'copy', ['memcpy', 'memset'], NULL),
    (2, 'comm', ['comm'], NULL),
    -- a collective's name starts a word ("_all_reduce", "::allreduce", "hcom_allReduce") or is CamelCase
    -- ("oneShotAllReduceKernel"): "small_reduce" or "call_gather" is not a collective
    (3, 'comm', NULL, '(?i:nccl|msccl|^hcom_|sendrecv|cross_device_reduce|multimem)'
                      || '|(^|[^A-Za-z])(?i:all_?reduce|all_?gather|all_?to_?all|reduce_?scatter)'
                      || '|AllReduce|AllGather|AllToAll|ReduceScatter'),
    (4, 'comm', NULL, '(?i)(intra|inter)node(_ll)?::|nvshmem|'
                      || '(alltoall|barrier|barrier_all|broadcast|fcollect|rdxn|reducescatter|sync|sync_all)_on_stream_kernel'),
    -- Ascend names an op's output-clearing kernel `{api}_{op}_MemSet` (CamelCase: `_combined_routing_memset` is not one)
    (5, 'copy', NULL, '(?i:^memcpy|^memset|memcpy_async|direct_copy|copy_kernel)|_MemSet$'),
    (6, 'kv_cache', NULL, '(?i)reshape_?and_?cache|concat_and_cache|store_kvcache|scatter_pa_kv|kv_?cache'),
    (7, 'attention', NULL, '(?i)flash|fmha|attention|attn|splitkv|batchdecode|batchprefill|_mla_|paged_?attention'),
    (8, 'gemm', NULL, '(?i)gemm|gemv|matmul|xmma|nvjet|cublas|cutlass|cijk_|bmm_|splitkreduce|wgmma|convolution|'
                      || 'conv2d|conv3d|winograd|scudnn|implicit_convolve'),
    (9, 'norm', NULL, '(?i)rms_?norm|layer_?norm|group_?norm|batch_?norm|instance_?norm|bn_fw|bn_bw|norm_kernel|'
                      || '_norm_|rsqrt|norm2d'),
    (10, 'sampling', NULL, '(?i)argmax|top_?k|top_?p|sampling|sampler|multinomial'),
    (11, 'elementwise', NULL, '(?i)elementwise|vectorized|unrolled|act_and_mul|silu|gelu|swiglu|relu|sigmoid|tanh|'
                              || 'rotary|rope|index|gather|scatter|embedding|triton_poi|fill|cast|add|mul|div|sub|'
                              || 'exp|pow|where|clamp|copy|cat')
),
task_families AS (
  -- each distinct (kind, name) is matched against the rules once, not once per task; `rule` is the priority of
  -- the rule that decided its family (NULL: no rule matched)
  SELECT t.kind, t.name, coalesce(arg_min(r.family, r.priority), 'other') AS family, min(r.priority) AS rule
  FROM (SELECT DISTINCT kind, name FROM device_tasks) t
  LEFT JOIN family_rules r
    ON (r.kinds IS NULL OR list_contains(r.kinds, t.kind)) AND (r.pattern IS NULL OR regexp_matches(t.name, r.pattern))
  GROUP BY t.kind, t.name
)
