"""The `collectives` table of Kineto traces, and what every source of collectives shares: the
normalised op names, the element sizes of the recorded dtypes, the HCCL group hash.

Kineto: one row per NCCL/RCCL kernel (the device time of the call; PyTorch copies the
`record_param_comms` args onto the kernel: collective name, group, ranks, element counts, dtype,
`Seq`) and per gloo range (`gloo:all_reduce`, ... on the thread that runs it; size from `Input
Dims` and `Input type`). Kineto records no per-link traffic, so Kineto traces leave `comm_links` empty.
"""

from __future__ import annotations

import json

import duckdb

from .model import MAX_RANK

# Order matters: `reducescatter` before `reduce`, `allreduce` before `reduce`, `sendrecv` before both.
_OP_PATTERNS = (
    ("reducescatter", "reduce_scatter"),
    ("allreduce", "all_reduce"),
    ("allgather", "all_gather"),
    ("alltoall", "all_to_all"),
    ("broadcast", "broadcast"),
    ("barrier", "barrier"),
    ("sendrecv", "other"),
    ("send", "send"),
    ("recv", "recv"),
    ("receive", "recv"),
    ("reduce", "reduce"),
)

# Bytes per element of the dtype names PyTorch (`Float`, `c10::BFloat16`, `long int`), HCCL
# (`FP32`, `BFP16`) and gloo's `Input type` write, lower-cased without punctuation or spaces.
_DTYPE_BYTES = {
    1: ("int8", "uint8", "char", "signedchar", "unsignedchar", "byte", "bool", "hif8"),
    2: ("bfloat16", "bf16", "bfp16", "half", "float16", "fp16", "int16", "uint16", "short", "shortint"),
    4: ("float", "float32", "fp32", "int", "int32", "uint32", "complexhalf"),
    8: ("double", "float64", "fp64", "int64", "uint64", "long", "longint", "longlong", "complexfloat"),
    16: ("int128", "complexdouble"),
}


def op_sql(expr: str) -> str:
    """SQL: the normalised op (`model.COLLECTIVE_OPS`) of a recorded collective or kernel name."""
    squashed = f"regexp_replace(lower(coalesce({expr}, '')), '[^a-z]', '', 'g')"
    cases = " ".join(f"WHEN contains({squashed}, '{pattern}') THEN '{op}'" for pattern, op in _OP_PATTERNS)
    return f"CASE {cases} ELSE 'other' END"


def dtype_bytes_sql(expr: str) -> str:
    """SQL: bytes per element of a recorded dtype name, or NULL when not known."""
    squashed = f"regexp_replace(lower(replace({expr}, 'c10::', '')), '[^a-z0-9]', '', 'g')"
    cases = " ".join(
        f"WHEN {squashed} IN ({', '.join(repr(n) for n in names)}) THEN {size}" for size, names in _DTYPE_BYTES.items()
    )
    return f"CASE {cases} WHEN {squashed} LIKE 'float8%' OR {squashed} LIKE 'fp8%' THEN 1 END"


def hccl_group_hash(name: str) -> str:
    """The number the Ascend profiler writes for an HCCL group (after `@` in communication.json,
    `group_name` in analysis.db) from the group's name (the keys of profiler_metadata.json's
    `parallel_group_info`, COMMUNICATION_OP.groupName): two 32-bit polynomial hashes of the
    characters (multipliers 29 and 131), joined high and low. Checked against the corpus dumps."""
    high = low = 0
    for char in name:
        high = (high * 29 + ord(char)) & 0xFFFFFFFF
        low = (low * 131 + ord(char)) & 0xFFFFFFFF
    return str((high << 32) | low)


def rank_list(value: object) -> list[int] | None:
    """A recorded list of global ranks (a JSON list, or its text), or None when it is not one."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, list) or not value:
        return None
    ranks = [r for r in value if isinstance(r, int) and not isinstance(r, bool) and 0 <= r <= MAX_RANK]
    return ranks if len(ranks) == len(value) else None


def _pg_config_rows(top_level: dict) -> list[tuple]:
    """(pg name, description, ranks, size) of `distributedInfo.pg_config`, where well formed."""
    dist = top_level.get("distributedInfo")
    configs = dist.get("pg_config") if isinstance(dist, dict) else None
    rows = []
    for pg in configs if isinstance(configs, list) else []:
        if not isinstance(pg, dict) or not isinstance(pg.get("pg_name"), (str, int)):
            continue
        ranks = rank_list(pg.get("ranks"))
        desc = pg.get("pg_desc")
        rows.append((str(pg["pg_name"]), str(desc) if isinstance(desc, str) else None, ranks))
    return rows


_ARGS = (
    "Collective name",
    "Process Group Name",
    "Process Group Description",
    "Process Group Ranks",
    "Group size",
    "In msg nelems",
    "Out msg nelems",
    "dtype",
    "Seq",
)


def create_kineto_table(con: duckdb.DuckDBPyConnection, base_ns: int, top_level: dict) -> None:
    """`coll_t`: the collectives of the trace loaded as `ev` / `slices0` (see `parsers.chrome`),
    in the model's column order after trace_id and rank (step from the registered `coll_steps`).

    Runs before the times are dropped from `slices0`; reads the names and args of the
    communication kernels and host annotations only.
    """
    con.execute("CREATE TABLE coll_pg (name VARCHAR, descr VARCHAR, ranks INTEGER[])")
    if rows := _pg_config_rows(top_level):
        con.executemany("INSERT INTO coll_pg VALUES (?, ?, ?)", rows)
    paths = "[" + ", ".join([f"'$.\"{key}\"'" for key in _ARGS] + ["'$.\"Input type\"[0]'"]) + "]"
    con.execute(
        f"""
        CREATE TABLE coll_t AS
        WITH cand AS (
          SELECT slice_id, ts, dur, device_type FROM slices0
          WHERE kind = 'comm' OR (kind = 'annotation' AND device_type = 'cpu')
        ),
        named AS (
          SELECT c.*, e.name, e.name LIKE 'gloo:%' AS gloo, json_extract_string(e.args, {paths}) AS av,
                 json_extract(e.args, '$."Input Dims"[0]') AS dims0
          FROM cand c JOIN (SELECT rowid AS rid, name, args FROM ev
                            WHERE rowid IN (SELECT slice_id FROM cand)) e ON e.rid = c.slice_id
          WHERE c.device_type <> 'cpu' OR e.name LIKE 'gloo:%'
        ),
        typed AS (
          SELECT n.*, av[2] AS grp,
                 CASE WHEN gloo THEN av[10] ELSE av[8] END AS dt,
                 CASE WHEN gloo THEN list_reduce(TRY_CAST(dims0 AS BIGINT[]), lambda a, b: a * b)
                      ELSE greatest(TRY_CAST(av[6] AS BIGINT), TRY_CAST(av[7] AS BIGINT)) END AS elements
          FROM named n
        )
        SELECT t.slice_id, CAST(NULL AS BIGINT) AS step, t.name,
               {op_sql("CASE WHEN t.gloo THEN t.name ELSE coalesce(t.av[1], t.name) END")} AS op,
               t.grp AS "group", coalesce(t.av[3], p.descr) AS group_desc,
               coalesce(TRY_CAST(t.av[4] AS INTEGER[]), p.ranks) AS group_ranks,
               coalesce(TRY_CAST(t.av[5] AS INTEGER), len(p.ranks)) AS group_size,
               coalesce(TRY_CAST(t.av[9] AS BIGINT),
                        row_number() OVER (PARTITION BY t.grp ORDER BY t.ts, t.slice_id) - 1) AS seq,
               {base_ns} + TRY_CAST(t.ts * 1000 AS BIGINT) AS ts_ns, TRY_CAST(t.dur * 1000 AS BIGINT) AS dur_ns,
               TRY_CAST(t.elements * {dtype_bytes_sql("t.dt")} AS BIGINT) AS bytes, t.dt AS dtype,
               CAST(NULL AS BIGINT) AS transit_ns, CAST(NULL AS BIGINT) AS wait_ns, CAST(NULL AS BIGINT) AS sync_ns,
               CAST(NULL AS BIGINT) AS idle_ns, CAST(NULL AS VARCHAR) AS algorithm,
               CASE WHEN t.gloo THEN 'gloo' ELSE 'kernel' END AS source
        FROM typed t LEFT JOIN coll_pg p ON p.name = t.grp
        ORDER BY t.slice_id
        """
    )


KINETO_QUERY = """
    SELECT c.* REPLACE (s.step AS step) FROM coll_t c LEFT JOIN coll_steps s USING (slice_id) ORDER BY c.slice_id
"""
