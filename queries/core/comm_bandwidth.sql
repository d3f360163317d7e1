-- title: Communication bandwidth
-- description: Per collective op and message size bucket (powers of two of the collective's bytes): calls, algorithm bandwidth (bytes over transfer time, the time from the last rank's arrival to the last rank's end, so waits for late ranks are left out) and bus bandwidth (NCCL's convention, comparable with a link's peak: all_reduce x 2(n-1)/n, all_gather and reduce_scatter x (n-1)/n, all_to_all x (n-1)/n, others x 1, n the group size), against the device's interconnect peak per direction (trace_devices.link_bw_bytes_per_s, or peak_link_gbps when given). far_below_peak: messages of at least large_bytes whose bus bandwidth is under low_pct of the peak; latency_bound: messages under small_bytes whose bus bandwidth is under low_pct of the peak (their time is mostly fixed latency: batch or fuse them).
-- units: bucket_bytes=bytes, algbw_bytes_per_s=B/s, busbw_bytes_per_s=B/s, peak_bytes_per_s=B/s, utilization_pct=% of the interconnect peak
-- order: transfer_ns desc
-- empty: no collective with a known size seen on two or more ranks
-- param: peak_link_gbps DOUBLE 0 Interconnect peak per direction in GB/s (0: the device table)
-- param: large_bytes BIGINT 16777216 Messages of at least this many bytes should come near the peak
-- param: small_bytes BIGINT 1048576 Messages under this many bytes are checked for being bound by latency
-- param: low_pct DOUBLE 25 Bus bandwidth under this percentage of the peak is far below it
-- finding: far_below_peak => warning: {op} of {bucket_label}: bus bandwidth {busbw_bytes_per_s:B/s}, {utilization_pct:.1f}% of the {peak_bytes_per_s:B/s} interconnect peak ({peak_source}) over {calls} calls
-- finding: latency_bound => info: {op} of {bucket_label}: bus bandwidth {busbw_bytes_per_s:B/s}, {utilization_pct:.1f}% of the {peak_bytes_per_s:B/s} interconnect peak over {calls} calls: bound by latency, batch or fuse these messages
WITH
-- @include _cluster_calls.sql
,
peak AS (
  SELECT CASE WHEN $peak_link_gbps > 0 THEN $peak_link_gbps * 1e9 ELSE min(link_bw_bytes_per_s) END AS peak_bytes_per_s,
         CASE WHEN $peak_link_gbps > 0 THEN 'param'
              ELSE 'device table: ' || arg_min(link_name, link_bw_bytes_per_s) END AS peak_source
  FROM trace_devices
),
sized AS (
  SELECT op, coalesce(group_size, ranks) AS n, bytes, transfer_ns,
         CAST(pow(2, floor(log2(bytes))) AS BIGINT) AS bucket_bytes,
         CASE WHEN op = 'all_reduce' THEN 2.0 * (coalesce(group_size, ranks) - 1) / coalesce(group_size, ranks)
              WHEN op IN ('all_gather', 'reduce_scatter', 'all_to_all')
                THEN (coalesce(group_size, ranks) - 1) * 1.0 / coalesce(group_size, ranks)
              ELSE 1.0 END AS bus_factor
  FROM cluster_collectives
  WHERE bytes > 0 AND transfer_ns > 0
),
buckets AS (
  SELECT op, bucket_bytes, count(*) AS calls, CAST(sum(bytes) AS BIGINT) AS bytes,
         CAST(sum(transfer_ns) AS BIGINT) AS transfer_ns, CAST(median(transfer_ns) AS BIGINT) AS median_transfer_ns,
         min(n) AS min_ranks, max(n) AS max_ranks,
         sum(bytes) * 1e9 / sum(transfer_ns) AS algbw_bytes_per_s,
         sum(bytes * bus_factor) * 1e9 / sum(transfer_ns) AS busbw_bytes_per_s
  FROM sized GROUP BY op, bucket_bytes
)
SELECT b.op, b.bucket_bytes,
       CASE WHEN b.bucket_bytes >= 1073741824 THEN (b.bucket_bytes // 1073741824) || ' GiB'
            WHEN b.bucket_bytes >= 1048576 THEN (b.bucket_bytes // 1048576) || ' MiB'
            WHEN b.bucket_bytes >= 1024 THEN (b.bucket_bytes // 1024) || ' KiB'
            ELSE b.bucket_bytes || ' B' END || ' to ' ||
       CASE WHEN b.bucket_bytes >= 536870912 THEN (2 * b.bucket_bytes // 1073741824) || ' GiB'
            WHEN b.bucket_bytes >= 524288 THEN (2 * b.bucket_bytes // 1048576) || ' MiB'
            WHEN b.bucket_bytes >= 512 THEN (2 * b.bucket_bytes // 1024) || ' KiB'
            ELSE 2 * b.bucket_bytes || ' B' END AS bucket_label,
       b.calls, b.bytes, b.transfer_ns, b.median_transfer_ns, b.min_ranks, b.max_ranks,
       b.algbw_bytes_per_s, b.busbw_bytes_per_s, p.peak_bytes_per_s, p.peak_source,
       100.0 * b.busbw_bytes_per_s / p.peak_bytes_per_s AS utilization_pct,
       coalesce(b.bucket_bytes >= $large_bytes AND 100.0 * b.busbw_bytes_per_s / p.peak_bytes_per_s < $low_pct, false)
         AS far_below_peak,
       coalesce(2 * b.bucket_bytes <= $small_bytes AND 100.0 * b.busbw_bytes_per_s / p.peak_bytes_per_s < $low_pct,
                false) AS latency_bound
FROM buckets b, peak p
ORDER BY b.op, b.bucket_bytes
