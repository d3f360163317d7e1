-- title: Collective skew
-- description: Per collective, aligned across ranks by (group, op, seq) (send and recv are one op, send_recv): the ranks seen, first and last arrival (the start of each rank's call: the NCCL/HCCL kernel, the gloo range), skew_ns (last minus first), last_rank, lateness_ns (the last arrival minus the median arrival of the other ranks: how late the last rank was) and wait_ns, the wait it caused the others (the sum over ranks of the last arrival minus their own). straggler: a collective of at least two ranks whose last rank came at least min_lateness_ns late. Rows by collective; the finding names the worst straggler of each step.
-- order: lateness_ns desc
-- empty: no collectives seen on two or more ranks (a single rank, or no NCCL/HCCL/gloo calls)
-- param: min_lateness_ns BIGINT 100000 A collective whose last rank comes at least this late (ns) is a straggler
-- finding: straggler AND step_rank = 1 => warning: [step {step}: ]rank {last_rank} arrived last at {op} #{seq} ({name}), {lateness_ns:ns} after the median of the other {others} ranks, who waited {wait_ns:ns} in all
WITH
-- @include _cluster_calls.sql
SELECT * EXCLUDE (last_trace_id, transfer_ns),
       ranks - 1 AS others,
       coalesce(ranks >= 2 AND lateness_ns >= $min_lateness_ns, false) AS straggler,
       row_number() OVER (PARTITION BY step ORDER BY ranks >= 2 AND lateness_ns >= $min_lateness_ns DESC,
                          lateness_ns DESC NULLS LAST, "group", op, seq) AS step_rank
FROM cluster_collectives
ORDER BY "group", seq, op
