-- title: Prefill and decode phases
-- description: One row per step (ProfilerStep#N, or a serving engine's step label when there are no ProfilerSteps; the whole trace when there is neither; a label nested in another, like SGLang's step[...] inside an execute_... range, is part of that step; label_source says which of these gave the row: 'vllm annotation', 'sglang step[...]', 'trtllm annotation', 'atom annotation', 'user annotation', 'ProfilerStep#N' or 'whole trace') classified prefill, decode, mixed or idle (training when it runs a backward pass, capture when it captures a CUDA/HIP graph, unknown when nothing tells): from the step label where present (vLLM execute_context_N(T)_generation_M(T), SGLang step[...], TensorRT-LLM _forward_step N: X ctx reqs, Y gen reqs, ATOM prefill[...]/decode[...], user annotations named prefill/decode/context/generation), else from attention input shapes (query rows against requests: one row per request is decode, the longest query plus one row per other request is mixed), else from GEMM rows (all GEMMs, LM head included, with equal rows is decode), else from kernel names (split-KV / paged / decode kernels against prefill kernels). dur_ns is the step's wall time, active_ns its device time from its first device task's start to its last one's end (a serving step that waits for work is long on the wall but short on the device); tokens are the new tokens of the step; context_len the KV tokens attended to summed over requests: from the label (vLLM detailed annotation, SGLang roofline), exact from dense attention shapes or a single request, else estimated (context_source 'estimate') as the previous step's KV plus this step's tokens, kept within the bounds of the longest context and the request count.
-- order: dur_ns desc
-- empty: no steps and no device tasks
-- finding: phase = 'mixed' AND prefill_tokens IS NOT NULL AND decode_tokens IS NOT NULL => info: step {step}: {prefill_tokens} prefill tokens batched with {decode_tokens} decode tokens; the decodes of this step wait for the prefill chunk ({dur_ns:ns})
WITH RECURSIVE
-- @include _step_model.sql
SELECT trace_id, rank, step, phase, tokens, context_len, ts_ns, end_ns - ts_ns AS dur_ns, active_ns, label, label_source,
       source, context_source,
       coalesce(ctx_tokens, CASE phase WHEN 'prefill' THEN tokens WHEN 'mixed' THEN max_q WHEN 'decode' THEN 0 END)
         AS prefill_tokens,
       coalesce(gen_tokens,
                CASE phase WHEN 'decode' THEN tokens WHEN 'mixed' THEN tokens - max_q WHEN 'prefill' THEN 0 END)
         AS decode_tokens,
       greatest(coalesce(CASE WHEN label IS NOT NULL AND dialect <> 'user' THEN ctx_reqs + gen_reqs END, reqs), 0) AS requests,
       max_q AS max_query_len, max_k AS max_context_len, attention_ops, kernels, device_busy_ns, dialect
FROM step_model
ORDER BY trace_id, ts_ns
