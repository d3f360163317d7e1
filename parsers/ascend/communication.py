"""HCCL collectives and per-link totals of an Ascend dump: the `collectives` and `comm_links` tables.

Sources, by preference:
* ops: the communication op slices (timeline / kernel_details rows, COMMUNICATION_OP), joined by
  name and nearest start to communication.json's per-op time split (else analysis.db's
  CommAnalyzerTime); ops only communication.json knows are kept without a slice.
* links: communication_matrix.json (else analysis.db's CommAnalyzerMatrix), its `{type}-total`
  entries only; the top/middle/bottom entries are samples of single ops and are never summed.

Group-local ranks become global ranks through profiler_metadata.json's `parallel_group_info`, whose
keys hash to the group number the files write (`collectives.hccl_group_hash`). Decimal text
(µs, ms, MB) is read exactly and rounded to whole ns and bytes.
"""

from __future__ import annotations

import json
import re
import sqlite3
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path

from ..collectives import dtype_bytes_sql, hccl_group_hash, op_sql, rank_list
from ..filekind import read_regular
from .dump_info import _load_json
from .layout import Sources
from .sqlite_reader import SqliteSource, open_readonly
from .staging import Staging

# communication(_matrix).json of one rank: a few KB per op. Past this a file is not read (a warning
# says so); raise it here for a dump with more ops.
MAX_COMMUNICATION_JSON_BYTES = 256 << 20

_TOTAL = re.compile(r"^(?P<type>.+)-total$")
_SAMPLE = re.compile(r"^(?P<type>.+)-(top|middle|bottom)\d*$")
_STEP = re.compile(r"(\d+)")
_LINK = re.compile(r"^(\d{1,10})-(\d{1,10})$")


def load(st: Staging, sources: Sources) -> None:
    """Fill st_collectives and st_comm_links from what the unit has."""
    groups = _groups(sources.profiler_metadata)
    _group_table(st, groups)
    ops_json = _read_json(st, sources.one("communication"))
    matrix_json = _read_json(st, sources.one("communication_matrix"))
    bad = [0]
    if ops_json is not None:
        _insert(st, "comm_times", _op_time_rows(ops_json, bad))
    elif sources.analysis_db is not None:
        _analysis_table(st, sources.analysis_db, "CommAnalyzerTime", "comm_times")
    if matrix_json is not None:
        _insert(st, "comm_matrix", _matrix_rows(matrix_json, bad))
        st.sql("UPDATE comm_matrix SET source = 'communication_matrix.json'")
    elif sources.analysis_db is not None:
        _analysis_table(st, sources.analysis_db, "CommAnalyzerMatrix", "comm_matrix")
    if bad[0]:
        st.warnings.append(f"{bad[0]} communication entries without usable numbers were skipped")
    _collectives(st)
    _links(st)


def _groups(metadata: Path | None) -> dict[str, tuple[str | None, list[int] | None]]:
    """HCCL group number -> (parallel group name, global ranks), from parallel_group_info."""
    info = _load_json(metadata, []).get("parallel_group_info")
    groups: dict[str, tuple[str | None, list[int] | None]] = {}
    for key, value in info.items() if isinstance(info, dict) else ():
        if isinstance(value, dict):
            name = value.get("group_name")
            groups[hccl_group_hash(key)] = (
                name if isinstance(name, str) else None,
                rank_list(value.get("global_ranks")),
            )
    return groups


def _group_table(st: Staging, groups: dict[str, tuple[str | None, list[int] | None]]) -> None:
    st.sql("CREATE TABLE comm_groups (grp VARCHAR, descr VARCHAR, ranks INTEGER[])")
    if groups:
        st.con.executemany("INSERT INTO comm_groups VALUES (?, ?, ?)", [(g, *v) for g, v in groups.items()])
    st.sql(
        """CREATE TABLE comm_times (step BIGINT, name VARCHAR, grp VARCHAR, ts_ns BIGINT, dur_ns BIGINT,
           transit_ns BIGINT, wait_ns BIGINT, sync_ns BIGINT, idle_ns BIGINT)"""
    )
    st.sql(
        """CREATE TABLE comm_matrix (step BIGINT, grp VARCHAR, op_type VARCHAR, sample BOOLEAN, op_name VARCHAR,
           src INTEGER, dst INTEGER, transport VARCHAR, bytes BIGINT, transit_ns BIGINT, bandwidth DOUBLE,
           source VARCHAR)"""
    )


def _read_json(st: Staging, path: Path | None) -> dict | None:
    if path is None:
        return None
    try:
        value = json.loads(read_regular(path, MAX_COMMUNICATION_JSON_BYTES), parse_float=Decimal)
    except (OSError, ValueError, RecursionError) as exc:
        problem = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:120]
        st.warnings.append(f"{path.name}: not read ({problem}); its communication data is missing")
        return None
    if not isinstance(value, dict):
        st.warnings.append(f"{path.name}: not a JSON object; skipped")
        return None
    return value


def _scaled(value: object, scale: int) -> int | None:
    """A JSON number (read as Decimal) times `scale`, rounded to an integer; None if not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        return None
    try:
        scaled = (Decimal(value) * scale).to_integral_value(ROUND_HALF_EVEN)
    except InvalidOperation:
        return None
    return int(scaled) if scaled.is_finite() and abs(scaled) < 1 << 63 else None


def _dicts(value: object) -> list[tuple[str, dict]]:
    return [(k, v) for k, v in value.items() if isinstance(v, dict)] if isinstance(value, dict) else []


def _step(key: str) -> int | None:
    match = _STEP.search(key)
    return int(match.group(1)) if match and len(match.group(1)) < 19 else None


def _op_time_rows(doc: dict, bad: list[int]) -> list[tuple]:
    rows = []
    for step_key, step in _dicts(doc):
        for _, ops in _dicts(step):
            for op_key, op in _dicts(ops):
                name, at, grp = op_key.rpartition("@")
                times = op.get("Communication Time Info")
                if not at or not isinstance(times, dict):
                    continue  # "Total Op Info" and the like
                values = [
                    _scaled(times.get("Start Timestamp(us)"), 1000),
                    *(_scaled(times.get(f"{k} Time(ms)"), 10**6) for k in ("Elapse", "Transit", "Wait")),
                    _scaled(times.get("Synchronization Time(ms)"), 10**6),
                    _scaled(times.get("Idle Time(ms)"), 10**6),
                ]
                if values[0] is None or values[1] is None:
                    bad[0] += 1
                    continue
                rows.append((_step(step_key), name, grp, *values))
    return rows


def _matrix_rows(doc: dict, bad: list[int]) -> list[tuple]:
    rows = []
    for step_key, step in _dicts(doc):
        for _, entries in _dicts(step):
            for entry_key, links in _dicts(entries):
                kind, _, grp = entry_key.rpartition("@")
                total, sample = _TOTAL.match(kind), _SAMPLE.match(kind)
                if not (total or sample):
                    continue
                op_type = (total or sample).group("type")  # type: ignore[union-attr]
                for link_key, link in _dicts(links):
                    ends = _LINK.match(link_key)
                    size = _scaled(link.get("Transit Size(MB)"), 10**6)
                    if ends is None or size is None:
                        bad[0] += 1
                        continue
                    bandwidth = link.get("Bandwidth(GB/s)")
                    op_name = link.get("Op Name")
                    rows.append(
                        (
                            _step(step_key),
                            grp,
                            op_type,
                            total is None,
                            op_name if isinstance(op_name, str) else None,
                            int(ends.group(1)),
                            int(ends.group(2)),
                            str(link.get("Transport Type") or "") or None,
                            size,
                            _scaled(link.get("Transit Time(ms)"), 10**6),
                            float(bandwidth) if isinstance(bandwidth, (int, Decimal)) else None,
                            None,
                        )
                    )
    return rows


def _insert(st: Staging, table: str, rows: list[tuple]) -> None:
    if rows:
        marks = ", ".join("?" * len(rows[0]))
        st.con.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)


def _analysis_table(st: Staging, path: Path, table: str, target: str) -> None:
    """analysis.db's CommAnalyzerTime / CommAnalyzerMatrix (ms, MB as REAL) into `target`."""
    try:
        con = open_readonly(path, st.scratch)
    except Exception as exc:  # noqa: BLE001 - a damaged side database loses its data, not the dump
        st.warnings.append(f"{path.name}: not read ({str(exc)[:120]}); its communication data is missing")
        return
    try:
        source = SqliteSource(con)
        if table == "CommAnalyzerTime":
            wanted = {n: "text" for n in ("hccl_op_name", "group_name", "step")}
            wanted |= {
                n: "float"
                for n in (
                    "start_timestamp",
                    "elapse_time",
                    "transit_time",
                    "wait_time",
                    "synchronization_time",
                    "idle_time",
                )
            }
        else:
            wanted = {n: "text" for n in ("hccl_op_name", "group_name", "transport_type", "step", "op_name")}
            wanted |= {n: "float" for n in ("src_rank", "dst_rank", "transit_size", "transit_time", "bandwidth")}
        if not source.copy(st, table, f"raw_{target}", wanted):
            return
    except sqlite3.Error as exc:
        st.warnings.append(f"{path.name}: {table} not read ({exc}); its communication data is missing")
        return
    finally:
        con.close()
    step = "TRY_CAST(regexp_extract(step, '(\\d+)', 1) AS BIGINT)"
    ns = "TRY_CAST(round({} * 1000000) AS BIGINT)"
    if table == "CommAnalyzerTime":
        st.sql(
            f"""INSERT INTO comm_times SELECT {step}, hccl_op_name, group_name, {ns.format("start_timestamp / 1000")},
                {ns.format("elapse_time")}, {ns.format("transit_time")}, {ns.format("wait_time")},
                {ns.format("synchronization_time")}, {ns.format("idle_time")} FROM raw_comm_times"""
        )
        return
    st.sql(
        f"""INSERT INTO comm_matrix
            SELECT {step}, group_name, regexp_extract(hccl_op_name, '^(.*)-[a-z]+[0-9]*$', 1),
                   NOT hccl_op_name LIKE '%-total', NULLIF(op_name, ''), TRY_CAST(src_rank AS INTEGER),
                   TRY_CAST(dst_rank AS INTEGER), transport_type, {ns.format("transit_size")},
                   {ns.format("transit_time")}, bandwidth, 'analysis.db'
            FROM raw_comm_matrix WHERE regexp_matches(hccl_op_name, '-(total|top|middle|bottom)[0-9]*$')"""
    )


def _collectives(st: Staging) -> None:
    """st_collectives: the op slices and the time split of each op, joined by name and nearest start."""
    st.sql(
        f"""
        CREATE TABLE comm_ops AS
        SELECT slice_id, name, ts_ns, dur_ns, step, args, cat FROM {st.slices_sql}
        WHERE kind = 'comm' AND coalesce(cat, '') <> 'hccl_task'
        """
    )
    names = [
        r[0] for r in st.con.execute("SELECT DISTINCT json_extract_string(args, '$.group') FROM comm_ops").fetchall()
    ]
    st.sql("CREATE TABLE comm_group_names (name VARCHAR, grp VARCHAR)")
    pairs = [(n, n if n.isdigit() else hccl_group_hash(n)) for n in names if isinstance(n, str) and n]
    if pairs:
        st.con.executemany("INSERT INTO comm_group_names VALUES (?, ?)", pairs)
    bytes_sql = f"TRY_CAST(TRY_CAST(count AS DOUBLE) * {dtype_bytes_sql('dtype')} AS BIGINT)"
    st.sql(
        f"""
        INSERT INTO st_collectives BY NAME
        WITH o AS (
          SELECT o.*, row_number() OVER () AS oid, json_extract_string(o.args, '$.data_type') AS dtype,
                 json_extract_string(o.args, '$.count') AS count, json_extract_string(o.args, '$.alg_type') AS alg,
                 TRY_CAST(json_extract_string(o.args, '$.rank_size') AS INTEGER) AS rank_size, n.grp AS slice_grp
          FROM comm_ops o LEFT JOIN comm_group_names n ON n.name = json_extract_string(o.args, '$.group')
        ),
        t AS (SELECT *, row_number() OVER () AS tid FROM comm_times),
        pairs AS (
          SELECT t.tid, o.oid FROM t JOIN o ON o.name = t.name
          QUALIFY row_number() OVER (PARTITION BY t.tid ORDER BY abs(o.ts_ns - t.ts_ns), o.oid) = 1
        ),
        pair AS (SELECT * FROM pairs QUALIFY row_number() OVER (PARTITION BY oid ORDER BY tid) = 1),
        joined AS (
          SELECT o.slice_id, coalesce(t.step, o.step) AS step, coalesce(o.name, t.name) AS name,
                 coalesce(t.grp, o.slice_grp) AS grp, coalesce(o.ts_ns, t.ts_ns) AS ts_ns,
                 coalesce(o.dur_ns, t.dur_ns) AS dur_ns, o.dtype, o.count, o.alg, o.rank_size,
                 t.transit_ns, t.wait_ns, t.sync_ns, t.idle_ns,
                 CASE WHEN o.slice_id IS NULL THEN 'communication.json'
                      WHEN o.args LIKE '%"op_id"%' THEN 'COMMUNICATION_OP'
                      WHEN upper(o.cat) IN ('HCCL', 'COMMUNICATION') THEN 'kernel_details'
                      ELSE 'trace_view.json' END AS source
          FROM pair p FULL JOIN o ON o.oid = p.oid FULL JOIN t ON t.tid = p.tid
        )
        SELECT j.slice_id, j.step, j.name, {op_sql("j.name")} AS op, j.grp AS "group", g.descr AS group_desc,
               g.ranks AS group_ranks, coalesce(len(g.ranks), j.rank_size) AS group_size,
               coalesce(TRY_CAST(regexp_extract(j.name, '__\\d+_(\\d+)', 1) AS BIGINT),
                        row_number() OVER (PARTITION BY j.grp ORDER BY j.ts_ns, j.slice_id) - 1) AS seq,
               j.ts_ns, j.dur_ns, {bytes_sql} AS bytes, NULLIF(j.dtype, 'N/A') AS dtype, j.transit_ns, j.wait_ns,
               j.sync_ns, j.idle_ns, NULLIF(j.alg, 'N/A') AS algorithm, j.source
        FROM joined j LEFT JOIN comm_groups g ON g.grp = j.grp
        WHERE j.name IS NOT NULL
        ORDER BY j.ts_ns, j.slice_id
        """
    )


def _links(st: Staging) -> None:
    """st_comm_links: the `-total` rows, with the op of the samples beside them and global ranks.

    Bandwidth is bytes over transit time (bytes/ns is GB/s), as msprof-analyze computes it: the recorded
    value has 4 decimals, over 1% off on a slow link (0.0036 for 0.003647 GB/s).
    """
    st.sql(
        f"""
        INSERT INTO st_comm_links BY NAME
        WITH sample_ops AS (
          SELECT step, grp, op_type, CASE WHEN count(DISTINCT op) = 1 THEN any_value(op) END AS op
          FROM (SELECT step, grp, op_type, {op_sql("op_name")} AS op FROM comm_matrix WHERE sample AND op_name <> '')
          GROUP BY ALL
        )
        SELECT m.step, m.grp AS "group", coalesce(s.op, {op_sql("m.op_type")}) AS op, m.op_type,
               g.ranks[m.src + 1] AS src_rank, g.ranks[m.dst + 1] AS dst_rank, m.src AS src_local_rank,
               m.dst AS dst_local_rank, m.transport, m.bytes, m.transit_ns,
               CASE WHEN m.transit_ns > 0 THEN m.bytes / m.transit_ns ELSE m.bandwidth END AS bandwidth_gbps,
               m.source
        FROM comm_matrix m LEFT JOIN sample_ops s USING (step, grp, op_type) LEFT JOIN comm_groups g USING (grp)
        WHERE NOT m.sample
        ORDER BY m.step, m.grp, m.op_type, m.src, m.dst
        """
    )
    unmapped = int(st.scalar("SELECT count(*) FROM st_comm_links WHERE src_rank IS NULL OR dst_rank IS NULL") or 0)
    if unmapped:
        st.warnings.append(
            f"{unmapped} communication links keep group-local ranks only (src_rank/dst_rank null):"
            " profiler_metadata.json records no rank list for their group"
        )
