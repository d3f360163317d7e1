-- title: Dynamic shapes (Ascend)
-- description: Ascend operators whose input shapes vary across steps: per trace and operator (kernel name), the distinct input shapes, how many of them do not occur in every step the operator runs in (each new shape can mean an operator compile or a slower dynamic-shape kernel), the steps, calls and time, and the OP State kernel_details reports (dynamic / static). Needs at least two steps. No rows on GPU traces.
-- order: total_ns desc
-- empty: no Ascend operator changed input shapes across steps (or fewer than two steps, or not an Ascend trace)
-- param: max_examples INTEGER 3 Example shapes to list per operator
-- finding: varying_shapes >= 10 => info: rank {rank}: {name} ran with {distinct_shapes} input shapes over {steps} steps ({varying_shapes} not in every step; OP State {op_state})
-- scope: rank
WITH npu_kernels AS (
  SELECT d.trace_id, d.rank, d.step, d.name, d.dur_ns, coalesce(n.input_shapes, d.input_dims) AS shape, n.op_type,
         n.op_state
  FROM device_tasks d
  LEFT JOIN npu_kernel_metrics n ON n.trace_id = d.trace_id AND n.slice_id = d.slice_id
  WHERE d.device_type = 'npu' AND d.step IS NOT NULL AND coalesce(n.input_shapes, d.input_dims) IS NOT NULL
),
op_steps AS (SELECT trace_id, name, count(DISTINCT step) AS steps FROM npu_kernels GROUP BY ALL),
shape_steps AS (SELECT trace_id, name, shape, count(DISTINCT step) AS steps FROM npu_kernels GROUP BY ALL),
shapes AS (
  SELECT s.trace_id, s.name, count(*) AS distinct_shapes, count(*) FILTER (WHERE s.steps < o.steps) AS varying_shapes,
         any_value(o.steps) AS steps,
         list(s.shape ORDER BY s.steps, s.shape) FILTER (WHERE s.steps < o.steps) AS varying
  FROM shape_steps s JOIN op_steps o USING (trace_id, name)
  GROUP BY ALL
)
SELECT k.trace_id, any_value(k.rank) AS rank, k.name, any_value(k.op_type) AS op_type, s.distinct_shapes,
       s.varying_shapes, s.steps, count(*) AS calls, CAST(sum(k.dur_ns) AS BIGINT) AS total_ns,
       coalesce(string_agg(DISTINCT k.op_state, ', '), '') AS op_state,
       any_value(s.varying)[1:$max_examples] AS example_shapes
FROM npu_kernels k JOIN shapes s USING (trace_id, name)
WHERE s.steps >= 2 AND s.varying_shapes > 0
GROUP BY k.trace_id, k.name, s.distinct_shapes, s.varying_shapes, s.steps
ORDER BY k.trace_id, s.varying_shapes DESC, total_ns DESC
