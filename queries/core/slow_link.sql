-- title: Slow links
-- description: Per link (group, op, src_rank, dst_rank, transport): the bytes and transit time of all its steps added up (the -total entries of Ascend's communication matrix, never its top/middle/bottom samples; where the matrix is not recorded, NCCL/RCCL send kernels with their Dst Rank: bytes over the kernel's time, transport unknown) and bandwidth_gbps, bytes over transit time; median_gbps is the median link of the same transport and op. A link under slow_ratio of it is slow. A link recorded by both of its ranks counts once (the sender's record). local_ranks: the ranks are group-local, the group's global rank list not being recorded.
-- units: ratio_pct=% of the median link of its transport
-- order: ratio_pct asc
-- empty: no per-link traffic: neither an Ascend communication matrix nor NCCL send/recv kernels with their peer
-- param: slow_ratio DOUBLE 0.5 A link whose bandwidth is under this fraction of the median link of its transport is slow
-- finding: slow => warning: link {src_rank} -> {dst_rank} ({transport}, {op}[, group {group}]): {bandwidth_gbps:.1f} GB/s, {ratio_pct:.0f}% of the median {transport} link ({median_gbps:.1f} GB/s, {peers} links)
WITH
matrix AS (
  SELECT rank AS recorder, coalesce("group", '') AS "group", op, coalesce(src_rank, src_local_rank) AS src_rank,
         coalesce(dst_rank, dst_local_rank) AS dst_rank, coalesce(transport, 'unknown') AS transport,
         src_rank IS NULL AS local_ranks, bytes, transit_ns
  FROM comm_links
  WHERE bytes IS NOT NULL AND transit_ns IS NOT NULL
),
sends AS (
  -- NCCL/RCCL: a send kernel names its peer; links are then derived only where no matrix exists at all
  SELECT c.rank AS recorder, coalesce(c."group", '') AS "group", 'send_recv' AS op, c.rank AS src_rank,
         TRY_CAST(json_extract_string(s.args, '$."Dst Rank"') AS INTEGER) AS dst_rank, 'unknown' AS transport,
         false AS local_ranks, c.bytes, c.dur_ns AS transit_ns
  FROM collectives c JOIN slices s ON s.trace_id = c.trace_id AND s.slice_id = c.slice_id
  WHERE c.op = 'send' AND c.bytes IS NOT NULL AND NOT EXISTS (SELECT 1 FROM comm_links)
),
records AS (
  SELECT "group", op, src_rank, dst_rank, transport, recorder, bool_or(local_ranks) AS local_ranks,
         CAST(sum(bytes) AS BIGINT) AS bytes, CAST(sum(transit_ns) AS BIGINT) AS transit_ns
  FROM (SELECT * FROM matrix UNION ALL SELECT * FROM sends)
  WHERE src_rank IS NOT NULL AND dst_rank IS NOT NULL
  GROUP BY ALL
),
links AS (
  -- one record per link: the sender's when it has one, else the lowest recording rank's
  SELECT "group", op, src_rank, dst_rank, transport,
         arg_min(bytes, (recorder <> src_rank, recorder)) AS bytes,
         arg_min(transit_ns, (recorder <> src_rank, recorder)) AS transit_ns,
         bool_or(local_ranks) AS local_ranks
  FROM records GROUP BY ALL
),
rated AS (
  SELECT *, bytes / nullif(transit_ns, 0) AS bandwidth_gbps FROM links
),
medians AS (
  SELECT transport, op, median(bandwidth_gbps) AS median_gbps, count(*) AS peers
  FROM rated WHERE bandwidth_gbps IS NOT NULL GROUP BY ALL
)
SELECT r."group", r.op, r.src_rank, r.dst_rank, r.transport, r.bytes, r.transit_ns, r.bandwidth_gbps, m.median_gbps,
       100.0 * r.bandwidth_gbps / nullif(m.median_gbps, 0) AS ratio_pct, m.peers, r.local_ranks,
       coalesce(m.peers >= 3 AND r.src_rank <> r.dst_rank AND r.bandwidth_gbps < $slow_ratio * m.median_gbps, false)
         AS slow
FROM rated r LEFT JOIN medians m USING (transport, op)
ORDER BY r."group", r.op, r.transport, r.src_rank, r.dst_rank
