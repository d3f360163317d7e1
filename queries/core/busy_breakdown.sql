-- title: Device busy breakdown
-- description: Per rank and device, where the device's time went, on the device timeline (a sweep over the boundaries of all its tasks, so overlapping tasks count once and a step's row counts every task running in its window, whichever step launched it). scope 'step': the step's device window, from the start of the step's first device task to the start of the next step's first device task (the last step's: to the end of the last task of any step). scope 'outside steps': the rest of the device span (before the first window, after the last; null step). scope 'device': the whole device span, first task start to last task end; the step and outside rows add up to it; steps: the device's step windows. Busy (compute, communication, memory copies) is the time at least one task of that class runs; compute and communication follow the kernel family rules (_family_rules.sql: family comm is communication), memcpy/memset tasks are copies. idle_ns: the row's span with no device task running; free_ns is Ascend's Free of step_trace_time: within the row, the span from the first compute or communication to the last, minus the time either runs.
-- units: idle_pct=% of the row's span (step device window / outside steps / device span), comm_not_overlapped_pct=% of the row's span (step device window / outside steps / device span)
-- order: idle_ns desc
-- empty: no device tasks (a CPU-only trace)
-- finding: scope = 'step' AND span_ns > 0 AND idle_ns > 0.3 * span_ns => warning: rank {rank} device {device_id} step {step}: device idle {idle_pct:.1f}% of the step's device window
-- finding: scope = 'outside steps' AND span_ns > 0 AND idle_ns > 0.3 * span_ns => warning: rank {rank} device {device_id}, outside any step: device idle {idle_pct:.1f}% of the device time outside the step windows
-- finding: scope = 'device' AND steps = 0 AND span_ns > 0 AND idle_ns > 0.3 * span_ns => warning: rank {rank} device {device_id}: device idle {idle_pct:.1f}% of the device span (first task start to last task end)
-- finding: scope = 'step' AND comm_ns > 0 AND comm_not_overlapped_ns > 0.5 * comm_ns AND comm_not_overlapped_ns > 0.1 * span_ns => info: rank {rank} device {device_id} step {step}: {comm_not_overlapped_pct:.1f}% of the step's device window is communication not overlapped with compute
-- finding: scope = 'outside steps' AND comm_ns > 0 AND comm_not_overlapped_ns > 0.5 * comm_ns AND comm_not_overlapped_ns > 0.1 * span_ns => info: rank {rank} device {device_id}, outside any step: {comm_not_overlapped_pct:.1f}% of the device time outside the step windows is communication not overlapped with compute
-- finding: scope = 'device' AND steps = 0 AND comm_ns > 0 AND comm_not_overlapped_ns > 0.5 * comm_ns AND comm_not_overlapped_ns > 0.1 * span_ns => info: rank {rank} device {device_id}: {comm_not_overlapped_pct:.1f}% of the device span is communication not overlapped with compute
-- scope: rank
WITH
-- @include _busy_rows.sql
SELECT * FROM busy_rows
ORDER BY trace_id, rank, device_id, scope = 'device', step NULLS LAST
