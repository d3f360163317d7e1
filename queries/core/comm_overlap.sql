-- title: Communication overlap
-- description: Per rank and step: communication time on the device, the part hidden under compute and the exposed part (communication while no compute runs): busy_breakdown's step rows (comm_ns, overlapped_ns, comm_not_overlapped_ns over each step's device window, communication by the family rules), added over the rank's devices, so a rank's rows add up to busy_breakdown's whole-device rows. Device time outside the step windows is in the row whose step is null.
-- units: hidden_pct=% of communication time, exposed_pct=% of communication time
-- order: exposed_ns desc
-- empty: fewer than two ranks (busy_breakdown has the same split for one), or no communication on a device (no NCCL/RCCL kernels or HCCL tasks; gloo runs on the host)
WITH
-- @include _rank_busy.sql
SELECT trace_id, rank, step, comm_ns, hidden_ns, exposed_ns, compute_ns,
       100.0 * hidden_ns / nullif(comm_ns, 0) AS hidden_pct, 100.0 * exposed_ns / nullif(comm_ns, 0) AS exposed_pct
FROM rank_busy
WHERE comm_ns > 0
ORDER BY rank, trace_id, step NULLS LAST
