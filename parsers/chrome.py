"""Kineto / Chrome trace JSON (`.json`, `.json.gz`) into the canonical model.

The array of events is read by DuckDB's JSON reader in parallel, with `ts`/`dur` typed as
DECIMAL so that the decimal text becomes exact integer nanoseconds (a double cannot hold the
ns part of absolute µs timestamps). Derived columns (kind, device, stream, steps, flows) are
SQL; nesting is numpy (see `parsers.nesting`). Damaged arrays go through the tolerant path of
`parsers.jsonscan` and the damage is reported as warnings with counts.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import collectives, jsonscan
from .arrownp import arrow_array, decimal_array, decimal_units, numpy_column
from .counters import counter_rows_sql
from .errors import TraceFormatError
from .flowbind import bind_points, pair_flows
from .model import MAX_RANK, TABLES
from .nesting import nest
from .parsed import DuckDBSource, ParsedTrace, RowGroupSource, TableSource, table_row_groups
from .redact import redact
from .rowzip import zip_rows
from .slice_order import GROUP_SQL, ROW_GROUP_ROWS, row_group_rows, row_groups
from .stagetime import timed_stage
from .steps import device_steps, host_steps, unlaunched_steps

PARSER_VERSION = "4"
FORMAT = "kineto"
_INT64_MAX = (1 << 63) - 1
_TOO_LARGE = "expected ts and dur that fit int64 nanoseconds (under 292 years), found larger ones"
FLOWS_ORDER = "dst_slice_id NULLS LAST, src_slice_id NULLS LAST, kind, flow_id"  # the stored order of `flows`

_COLUMNS = (
    "{'ph': 'VARCHAR', 'cat': 'VARCHAR', 'name': 'VARCHAR', 'pid': 'VARCHAR', 'tid': 'VARCHAR',"
    " 'ts': 'DECIMAL(38,3)', 'dur': 'DECIMAL(38,3)', 'id': 'VARCHAR', 'bp': 'VARCHAR', 's': 'VARCHAR',"
    " 'args': 'JSON'}"
)

DEVICE_CATS = (
    "kernel",
    "gpu_memcpy",
    "gpu_memset",
    "gpu_user_annotation",
    "cuda_sync",
    "mtia_ccp_events",
    "memcpy",
    "memset",
)

_KIND_SQL = """
CASE
  WHEN name LIKE 'ProfilerStep#%' THEN 'step'
  WHEN lcat IN ('cpu_op', 'operator') THEN 'cpu_op'
  WHEN lcat = 'python_function' THEN 'python'
  WHEN lcat IN ('user_annotation', 'gpu_user_annotation') THEN 'annotation'
  WHEN lcat IN ('cuda_runtime', 'runtime', 'privateuse1_runtime', 'xpu_runtime', 'mtia_runtime') THEN 'runtime'
  WHEN lcat IN ('cuda_driver', 'privateuse1_driver', 'xpu_driver') THEN 'driver'
  WHEN lcat = 'mtia_ccp_events' AND name ILIKE 'event%' THEN 'sync'
  WHEN lcat IN ('kernel', 'mtia_ccp_events') AND (name ILIKE 'nccl%' OR name ILIKE '%rccl%') THEN 'comm'
  WHEN lcat IN ('kernel', 'mtia_ccp_events') THEN 'kernel'
  WHEN lcat IN ('gpu_memcpy', 'memcpy') THEN 'memcpy'
  WHEN lcat IN ('gpu_memset', 'memset') THEN 'memset'
  WHEN lcat IN ('cuda_sync', 'xpu_sync', 'cuda_event') THEN 'sync'
  WHEN lcat = 'collective_comm' THEN 'comm'
  ELSE 'other'
END
"""

_ARG_PATHS = [
    "$.correlation",
    '$."External id"',
    '$."external id"',
    "$.stream",
    "$.device",
    '$."Input Dims"',
    '$."Input type"',
]


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _ns(expr: str) -> str:
    # ts/dur are DECIMAL(38,3) µs, read from the decimal text: times 1000 is exact integer ns.
    return f"CAST({expr} * 1000 AS BIGINT)"


def _vendor(top_level: dict, con: duckdb.DuckDBPyConnection) -> str:
    keys = set(top_level)
    if keys & {"roctracer_version", "hip_runtime_version", "hip_driver_version"}:
        return "rocm"
    names = " ".join(str(d.get("name", "")) for d in _as_list(top_level.get("deviceProperties")) if isinstance(d, dict))
    if any(word in names for word in ("AMD", "Instinct", "Radeon", "gfx")):
        return "rocm"
    hip = con.sql(
        "SELECT count(*) FROM ev WHERE ph = 'X' AND lower(cat) IN ('cuda_runtime', 'runtime') AND name LIKE 'hip%'"
    ).fetchall()[0][0]
    return "rocm" if hip else "cuda"


_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,19}")


def _whole_number(value: object, low: int, high: int) -> int | None:
    """`value` as an int in [low, high] when it is a whole number (or its ASCII decimal text), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value.strip()):
        value = int(value.strip())
    return value if isinstance(value, int) and low <= value <= high else None


def _top_level_number(
    top_level: dict, where: str, value: object, low: int, high: int, warnings: list[str]
) -> int | None:
    """A whole number from the top-level keys; a warning where it is there but not usable."""
    if value is None or value == "":
        return None
    number = _whole_number(value, low, high)
    if number is None:
        shown = json.dumps(value)[:40] if isinstance(value, (str, int, float)) else type(value).__name__
        warnings.append(f"ignored {where} {shown}: expected a whole number from {low} to {high}")
    return number


def _trace_info(top_level: dict, rank_hint: int | None, warnings: list[str]) -> dict:
    dist_info = top_level.get("distributedInfo")
    dist = dist_info if isinstance(dist_info, dict) else {}
    devices = [d for d in _as_list(top_level.get("deviceProperties")) if isinstance(d, dict)]
    versions = {
        k: v
        for k, v in top_level.items()
        if (k.endswith("_version") or k in ("schemaVersion",)) and isinstance(v, (str, int, float))
    }
    host = top_level.get("host_name") or top_level.get("hostname")
    rank = _top_level_number(top_level, "distributedInfo.rank", dist.get("rank"), 0, MAX_RANK, warnings)
    world = _top_level_number(top_level, "distributedInfo.world_size", dist.get("world_size"), 1, MAX_RANK, warnings)
    base = _top_level_number(
        top_level, "baseTimeNanoseconds", top_level.get("baseTimeNanoseconds"), 0, _INT64_MAX, warnings
    )
    return {
        "rank": rank if rank is not None else (rank_hint or 0),
        "world_size": world,
        "host": str(host) if host else None,
        "device_names": [str(d.get("name")) for d in devices if d.get("name")],
        "tool_versions": json.dumps(versions, sort_keys=True),
        "base_time_ns": base or 0,
    }


def _as_list(value: object) -> list:
    return value if isinstance(value, list) else []


def _profiler_errors(top_level: dict) -> list[str]:
    """The profiler's own ERROR lines: a list of strings, or one string."""
    lines = top_level.get("ERROR")
    lines = [lines] if isinstance(lines, str) else _as_list(lines)
    return [f"profiler reported: {redact(line)[:200]}" for line in lines if isinstance(line, str)]


class _Builder:
    """Runs the SQL that turns the raw event table `ev` into the model's tables."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        path: Path,
        base_ns: int,
        vendor: str,
        workers: int = 1,
        top_level: dict | None = None,
    ) -> None:
        self.con = con
        self.top_level = top_level or {}
        self.path = path
        self.workers = workers
        self.base = base_ns
        self.vendor = vendor
        self.warnings: list[str] = []
        self.nested = pa.table({})  # nesting, steps and correlations per slice, from build_links
        self.flow_pairs: pa.Table | None = None  # the flows, where build_links paired them in numpy
        self.group_rows = ROW_GROUP_ROWS  # rows per row group of the slices write (set once they are counted)

    def sql(self, query: str) -> None:
        self.con.execute(query)

    def count(self, query: str) -> int:
        return int(self.con.sql(query).fetchall()[0][0])

    def build_slices(self) -> None:
        """`slices0`: the compact per-slice columns that joins need; strings stay in `ev`."""
        self._pair_begin_end()
        device_cats = ", ".join(f"'{c}'" for c in DEVICE_CATS)
        paths = "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in _ARG_PATHS) + "]"
        # A scan and projections keep the rows in `ev`'s order (preserve_insertion_order), which
        # spares a sort of every column here. A long IN list would become a join and lose it.
        self.sql("SET disabled_optimizers = 'in_clause'")
        self.sql(
            f"""
            CREATE TABLE slices0 AS
            WITH a AS (
              SELECT rowid AS slice_id, name, lower(cat) AS lcat, pid, tid, ts, dur,
                     json_extract_string(args, {paths}) AS av
              FROM ev WHERE ph = 'X' AND ts IS NOT NULL AND dur IS NOT NULL
            ),
            k AS (
              SELECT *, {_KIND_SQL} AS kind,
                     CASE WHEN lcat IN ({device_cats})
                          THEN CASE WHEN lcat LIKE 'mtia%' THEN 'mtia' ELSE '{self.vendor}' END
                          ELSE 'cpu' END AS device_type
              FROM a
            )
            SELECT slice_id, ts, dur, kind, device_type,
                   CASE WHEN device_type = 'cpu' THEN NULL
                        ELSE coalesce(TRY_CAST(av[5] AS INTEGER), TRY_CAST(pid AS INTEGER)) END AS device_id,
                   pid, tid, hash(pid, tid) AS track,
                   CASE WHEN device_type = 'cpu' THEN NULL
                        ELSE coalesce(TRY_CAST(av[4] AS BIGINT), TRY_CAST(tid AS BIGINT)) END AS stream,
                   TRY_CAST(av[1] AS BIGINT) AS correlation,
                   TRY_CAST(coalesce(av[2], av[3]) AS BIGINT) AS external_id,
                   av[6] AS input_dims, av[7] AS input_types,
                   CASE WHEN kind = 'step' THEN TRY_CAST(regexp_extract(name, '#(\\d+)', 1) AS BIGINT) END AS step_no
            FROM k
            """
        )
        self.sql("RESET disabled_optimizers")
        self._skip_unusable_times()
        negative = self.count("SELECT count(*) FROM slices0 WHERE dur < 0")
        if negative:
            self.warnings.append(f"{negative} slices have a negative duration (kept as written)")

    def _skip_unusable_times(self) -> None:
        """Count the X events left out of `slices0` for a ts or dur that is missing or not a number
        (text such as "NaN" or "abc", or past DECIMAL(38,3), reads as NULL), and unmark them."""
        no_ts, no_dur = self.con.sql(
            "SELECT count(*) FILTER (ts IS NULL), count(*) FILTER (ts IS NOT NULL AND dur IS NULL)"
            " FROM ev WHERE ph = 'X'"
        ).fetchall()[0]
        if no_ts:
            self.warnings.append(f"{no_ts} complete events had no usable ts and were skipped")
        if no_dur:
            self.warnings.append(
                f"{no_dur} complete events had no usable dur (missing or not a number) and were skipped"
            )
        if no_ts or no_dur:
            self.sql("UPDATE ev SET ph = NULL WHERE ph = 'X' AND (ts IS NULL OR dur IS NULL)")  # 'X' rows are slices

    def _pair_begin_end(self) -> None:
        """Turn matched B/E pairs into X events in place (the B row becomes the slice)."""
        # ts in thousandths of a µs (DECIMAL(38,3) times 1000: an exact integer)
        rows = self.con.sql(
            "SELECT rowid, ph, pid, tid, TRY_CAST(ts * 1000 AS BIGINT) FROM ev"
            " WHERE ph IN ('B', 'E') AND ts IS NOT NULL ORDER BY rowid"
        ).fetchall()
        if not rows:
            return
        if any(row[4] is None for row in rows):
            raise TraceFormatError(self.path, _TOO_LARGE)
        open_by_track: dict[tuple, list] = {}
        paired = []
        unmatched_end = 0
        for rowid, ph, pid, tid, ts in rows:
            stack = open_by_track.setdefault((pid, tid), [])
            if ph == "B":
                stack.append((rowid, ts))
            elif stack:
                b_rowid, b_ts = stack.pop()
                paired.append((b_rowid, ts - b_ts))
            else:
                unmatched_end += 1
        unmatched_begin = sum(len(s) for s in open_by_track.values())
        if unmatched_begin or unmatched_end:
            self.warnings.append(
                f"{unmatched_begin} B events without an E and {unmatched_end} E events without a B were skipped"
            )
        if paired:
            rids = np.fromiter((r for r, _ in paired), dtype=np.int64, count=len(paired))
            durations = np.fromiter((d for _, d in paired), dtype=np.int64, count=len(paired))
            pairs = pa.table({"rid": arrow_array(rids), "d": decimal_array(durations, 38, 3)})
            self.con.register("be_pairs", pairs)
            self.sql("UPDATE ev SET ph = 'X', dur = be_pairs.d FROM be_pairs WHERE ev.rowid = be_pairs.rid")
            self.con.unregister("be_pairs")

    def _fetch(self, query: str) -> dict[str, np.ndarray]:
        """A query's columns as numpy arrays; its decimal `ts` and `dur` (µs) as int64 `ts_ns` and `dur_ns`."""
        table = self.con.sql(query).to_arrow_table()
        column = {name: numpy_column(table.column(name)) for name in table.column_names if name not in ("ts", "dur")}
        column["ts_ns"] = self._ns(table.column("ts"))
        column["dur_ns"] = self._ns(table.column("dur"), offset=0)
        return column

    def _ns(self, column: pa.ChunkedArray, offset: int | None = None) -> np.ndarray:
        """µs as exact DECIMAL(38,3) to int64 ns, plus `offset` (the trace's base time by default)."""
        base = self.base if offset is None else offset
        try:
            ns = decimal_units(column)
            if base and len(ns) and not (-_INT64_MAX - base <= int(ns.min()) and int(ns.max()) <= _INT64_MAX - base):
                raise ValueError("shifted by the base time beyond the int64 range")
        except ValueError:
            raise TraceFormatError(self.path, _TOO_LARGE) from None
        return ns + base if base else ns

    def build_links(self) -> None:
        """Nesting, flow binding, launch correlation and steps, in numpy; aligned with `slices0` by position."""
        query = """
            SELECT slice_id, track, ts, dur, hash(pid) AS pid_key, device_type = 'cpu' AS on_host,
                   kind IN ('runtime', 'driver') AS is_launch, kind = 'step' AND device_type = 'cpu' AS is_step,
                   coalesce(correlation, -1) AS correlation, coalesce(step_no, -1) AS step_no
            FROM slices0
        """
        column = self._fetch(query)
        # Stored order must be slice_id order, like `ev`: the slices are written by zipping `ev` and
        # `slices0` row by row, and the arrays here are searched by slice_id.
        if not np.all(column["slice_id"][1:] > column["slice_id"][:-1]):
            self.sql("CREATE OR REPLACE TABLE slices0 AS SELECT * FROM slices0 ORDER BY slice_id")
            column = self._fetch(query)
        slice_id, ts, dur = column["slice_id"], column["ts_ns"], column["dur_ns"]
        track = column["track"].astype(np.uint64).view(np.int64)
        column["correlation"] = column["correlation"].copy()  # filled in from launch flows below
        result = nest(track, ts, dur, slice_id, workers=self.workers)
        self._bind_flows(column, track, result.parent, result.order)
        step = self._steps(column, ts, dur)
        self.nested = pa.table(
            {
                **result.columns(slice_id),
                "step": arrow_array(step, mask=step < 0),
                "correlation": arrow_array(column["correlation"], mask=column["correlation"] < 0),
                "ts_ns": arrow_array(ts),
                "dur_ns": arrow_array(dur),
            }
        )
        overlapping = int(result.overlaps.sum())
        if overlapping:
            on_device = int((result.overlaps & ~column["on_host"]).sum())
            where = (
                f"; {on_device} of them on device streams, where a task may start before the one before it"
                " ends (an early launch, such as Hopper's programmatic dependent launch)"
                if on_device
                else ""
            )
            self.warnings.append(
                f"{overlapping} slices overlap their parent partially (kept, flagged in `overlaps_parent`){where}"
            )

    def _bind_flows(
        self, column: dict[str, np.ndarray], track: np.ndarray, parent: np.ndarray, order: np.ndarray
    ) -> None:
        """`flows_t`: flow points bound to slices and paired by (cat, id); fills missing device correlations."""
        # The points go to numpy, are bound to their slices there and are paired there too (by SQL joins
        # where an id is text).
        points = self.con.sql(
            """
            SELECT cat, id, hash(pid, tid) AS track, ts, ph = 's' AS is_start,
                   coalesce(ph <> 's' AND cat IN ('ac2g', 'async_gpu', 'async_cpu_to_gpu'), false) AS launch_end,
                   coalesce(TRY_CAST(id AS BIGINT), -1) AS flow_num,
                   coalesce(CAST(TRY_CAST(id AS BIGINT) AS VARCHAR) = id, false) AS numeric_id
            FROM ev WHERE ph IN ('s', 't', 'f') AND ts IS NOT NULL
            """
        ).to_arrow_table()
        bound = bind_points(
            track,
            column["ts_ns"],
            column["dur_ns"],
            column["slice_id"],
            parent,
            numpy_column(points.column("track")).astype(np.uint64).view(np.int64),
            self._ns(points.column("ts")),
            order,
        )
        self.flow_pairs = _paired_flows(points, bound)
        if self.flow_pairs is None:
            self._pair_flows_in_sql(points, bound)
        point = {name: numpy_column(points.column(name)) for name in ("launch_end", "flow_num")}
        del points  # only what the fill below reads stays
        # Device work without a correlation arg (MTIA, legacy) gets it from its launch flow's id.
        usable = point["launch_end"] & (bound >= 0) & (point["flow_num"] >= 0)
        target, ids = bound[usable], point["flow_num"][usable]
        position = np.searchsorted(column["slice_id"], target)  # slice_id is ascending in slices0
        fill = (~column["on_host"][position]) & (column["correlation"][position] < 0)
        column["correlation"][position[fill]] = ids[fill]

    def flow_row_groups(self) -> Iterator[pa.Table]:
        """The numpy-paired flows in their stored order (that of `FLOWS_ORDER`), a row group at a time."""
        assert self.flow_pairs is not None
        keys = ("dst_slice_id", "src_slice_id", "kind", "flow_id")
        order = pc.sort_indices(self.flow_pairs, sort_keys=[(name, "ascending", "at_end") for name in keys])
        return table_row_groups(self.flow_pairs.take(order), ROW_GROUP_ROWS)

    def _pair_flows_in_sql(self, points: pa.Table, bound: np.ndarray) -> None:
        """`flows_t` by joins on (cat, id) as text: for ids that are not plain integers."""
        # points come in file order: their position orders them as the events' rowid does
        flow_bound = pa.table(
            {
                "point": arrow_array(np.arange(points.num_rows, dtype=np.int64)),
                "is_start": points.column("is_start"),
                "cat": points.column("cat"),
                "id": points.column("id"),
                "slice_id": arrow_array(bound, mask=bound < 0),
            }
        )
        self.con.register("flow_bound", flow_bound)
        self.sql(
            """
            CREATE TABLE flows_t AS
            SELECT dst.cat AS kind, dst.id AS flow_id, src.slice_id AS src_slice_id, dst.slice_id AS dst_slice_id
            FROM (SELECT * FROM flow_bound WHERE NOT is_start) dst
            LEFT JOIN (SELECT cat, id, arg_min_null(slice_id, point) AS slice_id  -- the first start of the flow
                       FROM flow_bound WHERE is_start GROUP BY cat, id) src
              ON src.cat = dst.cat AND src.id = dst.id
            UNION ALL
            SELECT s.cat, s.id, s.slice_id, NULL
            FROM flow_bound s
            WHERE s.is_start AND NOT EXISTS (
              SELECT 1 FROM flow_bound d WHERE NOT d.is_start AND d.cat = s.cat AND d.id = s.id)
            """
        )
        self.con.unregister("flow_bound")

    @staticmethod
    def _steps(column: dict[str, np.ndarray], ts: np.ndarray, dur: np.ndarray) -> np.ndarray:
        pid = column["pid_key"].astype(np.uint64).view(np.int64)
        on_host, is_step = column["on_host"], column["is_step"]
        step = np.full(len(ts), -1, dtype=np.int64)
        if not is_step.any():
            return step
        host = np.flatnonzero(on_host)
        step[host] = host_steps(
            pid[host], ts[host], pid[is_step], ts[is_step], ts[is_step] + dur[is_step], column["step_no"][is_step]
        )
        launches = np.flatnonzero(column["is_launch"] & on_host & (column["correlation"] >= 0))
        device = np.flatnonzero(~on_host)
        step[device] = device_steps(column["correlation"][device], column["correlation"][launches], step[launches])
        launched = np.isin(column["correlation"][device], column["correlation"][launches])
        unlaunched, stepped = device[~launched], device[launched & (step[device] >= 0)]
        step[unlaunched] = unlaunched_steps(
            ts[unlaunched], ts[stepped], ts[stepped] + dur[stepped], step[stepped],
            ts[is_step], ts[is_step] + dur[is_step], column["step_no"][is_step],
        )
        return step

    def slice_row_groups(self) -> Iterator[pa.Table]:
        """The slices, one table per row group of the write: the strings of `ev`, the columns of
        `slices0` and the nesting of `build_links`, zipped row by row, then regrouped.

        Joining them in SQL needs a POSITIONAL JOIN, which runs on one thread; as Arrow streams they
        are read in parallel with the encoding of the row groups before them. The streams come in
        batches of one row group: a batch and its copies (zipped, then split by group) are what the
        write holds beside the tables, so a small trace's smaller row groups keep that small too.
        """
        strings = (
            self.con.cursor()
            .sql(
                "SELECT rowid AS slice_id, name, cat, CAST(coalesce(args, '{}') AS VARCHAR) AS args"
                " FROM ev WHERE ph = 'X'"
            )
            .to_arrow_reader(self.group_rows)
        )
        numbers = (
            self.con.cursor()
            .sql(f"SELECT *, NULL::VARCHAR AS core, {GROUP_SQL} AS slice_group FROM slices0")
            .to_arrow_reader(self.group_rows)
        )
        rows = zip_rows([strings, numbers, self.nested], "slice_id")
        return row_groups(rows, "slice_group", self.group_rows, emit_every=self.group_rows)

    def settle_event_tables(self) -> None:
        """Materialise the small tables (memory, counters, instants, metadata), then drop the columns
        of `ev` and `slices0` that only they and the linking read.

        What stays is the strings of the slices, for their write; the memory freed is memory that
        the write does not spill to scratch files and read back.
        """
        collectives.create_kineto_table(self.con, self.base, self.top_level)  # reads the times dropped below
        # Their events, set aside first. An IN list on `ph` is not pushed into the scan, which then
        # reads every column of every event (0.45 s on a 1 GB trace); the semi-join on rowid reads
        # `ph` alone, then only the row groups between the first and the last match.
        self.sql(
            "CREATE TABLE small_ev AS SELECT rowid AS rid, ph, cat, name, pid, tid, ts, s, args FROM ev"
            " WHERE rowid IN (SELECT rowid FROM ev WHERE ph IN ('i', 'I', 'R', 'C', 'M'))"
        )
        small = {
            "memory_t": self.memory_query(),
            "counters_t": self.counters_query(),
            "instants_t": self.instants_query(),
            "metadata_t": self.metadata_query(),
        }
        for table, query in small.items():
            self.sql(f"CREATE TABLE {table} AS {query}")
        self.sql("DROP TABLE small_ev")
        for column in ("ts", "dur", "pid", "tid", "id", "bp", "s"):
            self.sql(f"ALTER TABLE ev DROP COLUMN {column}")
        for column in ("ts", "dur", "track", "correlation", "step_no"):  # linked: `nested` has what the write needs
            self.sql(f"ALTER TABLE slices0 DROP COLUMN {column}")

    def memory_query(self) -> str:
        keys = ["Addr", "Bytes", "Total Allocated", "Total Reserved", "Device Type", "Device Id"]
        paths = "[" + ", ".join(f"'$.\"{key}\"'" for key in keys) + "]"
        return f"""
            WITH m AS (
              SELECT rid, ts, pid, tid, json_extract_string(args, {paths}) AS av
              FROM small_ev WHERE ph IN ('i', 'I') AND name = '[memory]' AND ts IS NOT NULL
            )
            SELECT {self.base} + {_ns("ts")} AS ts_ns,
                   CASE TRY_CAST(av[5] AS INTEGER)
                     WHEN 0 THEN 'cpu' WHEN 1 THEN '{self.vendor}' WHEN 6 THEN 'rocm' WHEN 12 THEN 'xpu'
                     WHEN 19 THEN 'mtia' WHEN 20 THEN 'npu' ELSE 'other' END AS device_type,
                   TRY_CAST(av[6] AS INTEGER) AS device_id,
                   TRY_CAST(av[1] AS BIGINT) AS addr, TRY_CAST(av[2] AS BIGINT) AS bytes,
                   TRY_CAST(av[3] AS BIGINT) AS total_allocated, TRY_CAST(av[4] AS BIGINT) AS total_reserved,
                   pid, tid
            FROM m ORDER BY rid
        """

    def counters_query(self) -> str:
        return counter_rows_sql("small_ev", "rid", f"{self.base} + {_ns('e.ts')}", binary=False)

    def instants_query(self) -> str:
        return f"""
            SELECT {self.base} + {_ns("ts")} AS ts_ns, name, cat, pid, tid, coalesce(s, 't') AS scope,
                   CAST(coalesce(args, '{{}}') AS VARCHAR) AS args
            FROM small_ev WHERE ph IN ('i', 'I', 'R') AND coalesce(name, '') <> '[memory]' AND ts IS NOT NULL
            ORDER BY rid
        """

    def metadata_query(self) -> str:
        return """
            SELECT CASE WHEN name LIKE 'thread%' THEN 'thread' WHEN name LIKE 'process%' THEN 'process'
                        ELSE 'other' END AS kind,
                   pid, tid, name AS key,
                   coalesce(json_extract_string(args, ['$.name', '$.labels', '$.sort_index'])
                              .list_filter(lambda v: v IS NOT NULL)[1],
                            CAST(args AS VARCHAR)) AS value
            FROM small_ev WHERE ph = 'M' ORDER BY rid
        """


def _paired_flows(points: pa.Table, bound: np.ndarray) -> pa.Table | None:
    """The rows of `flows_t` from the flow points and the slice each is bound to (-1: none), paired in
    numpy on one integer key per (cat, id); None where there are no points, an id is not a plain
    integer or a cat is missing (`_pair_flows_in_sql` pairs those as text).

    Joining 1.5 M points on (cat, id) text in DuckDB took 0.6-0.85 s.
    """
    if not points.num_rows:  # nothing to pair (and pyarrow would import pandas for an empty combine)
        return None
    cats = pc.dictionary_encode(points.column("cat")).combine_chunks()
    if cats.null_count or not numpy_column(points.column("numeric_id")).all():
        return None
    number, code = numpy_column(points.column("flow_num")), numpy_column(cats.indices).astype(np.int64)
    kinds = max(len(cats.dictionary), 1)
    limit = (_INT64_MAX - kinds) // kinds  # number * kinds + code stays an int64
    if not -limit <= int(number.min()) <= int(number.max()) <= limit:
        return None
    ends, source, lone = pair_flows(number * kinds + code, numpy_column(points.column("is_start")))
    rows = np.concatenate((ends, lone))
    src = np.concatenate((np.where(source >= 0, bound[np.maximum(source, 0)], -1), bound[lone]))
    dst = np.concatenate((bound[ends], np.full(len(lone), -1, dtype=np.int64)))
    taken = arrow_array(rows)
    return pa.table(
        {
            "kind": pc.take(points.column("cat"), taken),
            "flow_id": pc.take(points.column("id"), taken),
            "src_slice_id": arrow_array(src, mask=src < 0),
            "dst_slice_id": arrow_array(dst, mask=dst < 0),
        }
    )


def _top_level_rows(top_level: dict) -> list[tuple]:
    rows = []
    for key, value in top_level.items():
        clean = redact(value, key)
        if key == "deviceProperties" and isinstance(clean, list):
            for dev in clean:
                dev_id = str(dev.get("id", "")) if isinstance(dev, dict) else ""
                rows.append(("device", None, None, dev_id, json.dumps(dev, sort_keys=True)))
            continue
        kind = "distributed" if key == "distributedInfo" else "trace"
        rows.append((kind, None, None, key, json.dumps(clean, sort_keys=True)))
    return rows


def _memory_limit(path: Path) -> str:
    """DuckDB's memory budget: spill joins and sorts to scratch rather than grow with the trace.

    0.6 of the JSON size, for the whole parse: while the events are parsed and linked, numpy
    arrays take memory beside DuckDB's, and while the slices are written, their regrouping
    (parsers/slice_order.py) holds up to one row group per group beside it. A larger budget for
    the writes (0.8) took the peak of a 1 GB trace to 1.6x the JSON; 0.5 made the write slower.
    """
    size = path.stat().st_size
    budget = max(512 << 20, min(int(size * 0.6), 8 << 30))
    return f"{budget >> 20}MB"


def _load_events(con: duckdb.DuckDBPyConnection, events_paths: list[Path]) -> None:
    # Several files are read in parallel, in order: rowid follows the events' order in the trace.
    files = "[" + ", ".join(_quote(p) for p in events_paths) + "]"
    con.execute(
        f"CREATE OR REPLACE TABLE ev AS SELECT * FROM read_json({files}, format='array', records=true,"
        f" ignore_errors=true, columns={_COLUMNS})"
    )


def _load_damaged(
    con: duckdb.DuckDBPyConnection, path: Path, extracted: jsonscan.ExtractedEvents, scratch: Path, workers: int
) -> list[str]:
    """Load an events array that is cut or damaged; return the warnings that say what was kept.

    A cut array is read fast up to an event boundary near its end and event by event after it
    (`_load_cut`); where that does not hold (damage before the boundary), the whole array is walked.
    """
    loaded = _load_cut(con, extracted.events_path, scratch, workers) if not extracted.complete else None
    if loaded is None:
        rec = jsonscan.recover_events(extracted.events_path, scratch / "recovered.json")
        _load_events(con, [rec.events_path])
        rec.events_path.unlink(missing_ok=True)
        kept, damage = rec.kept, rec.damage_offset
    else:
        rec, kept, damage = loaded
    warnings = []
    unit = "decompressed JSON" if jsonscan.is_gzip(path) else "file"
    if damage is not None:
        offset = extracted.array_offset + damage
        warnings.append(f"trace is truncated or damaged at byte {offset} of the {unit}: kept {kept} complete events")
    elif not extracted.complete and extracted.form == "object":
        warnings.append(
            f"trace is cut or damaged after its events, in the top-level keys that follow them: kept all {kept} events,"
            " skipped those keys"
        )
    if rec.repaired:
        warnings.append(f"{rec.repaired} events had malformed strings and were repaired")
    if rec.skipped:
        warnings.append(f"{rec.skipped} malformed events could not be repaired and were skipped")
    return warnings


def _load_cut(
    con: duckdb.DuckDBPyConnection, events_path: Path, scratch: Path, workers: int
) -> tuple[jsonscan.Recovery, int, int | None] | None:
    """Load a cut events array: the events before a boundary near the cut with the JSON reader,
    those after it event by event. (The tail's recovery, the complete events kept, where the damage
    is in the events array) or None where no candidate boundary's head reads (the caller walks the
    whole array)."""
    for boundary in jsonscan.truncated_boundaries(events_path):
        loaded = _load_cut_at(con, events_path, scratch, workers, boundary)
        if loaded is not None:
            return loaded
    return None


def _load_cut_at(
    con: duckdb.DuckDBPyConnection, events_path: Path, scratch: Path, workers: int, boundary: tuple[int, int]
) -> tuple[jsonscan.Recovery, int, int | None] | None:
    cut = jsonscan.split_truncated(events_path, workers, scratch / "tail.json", boundary)
    rec = jsonscan.recover_events(cut.tail, scratch / "tail.recovered.json")
    try:
        _load_events(con, [*cut.head.parts, rec.events_path])
    except duckdb.InvalidInputException:
        return None
    finally:
        for part in (*cut.head.parts, cut.tail, rec.events_path):
            part.unlink(missing_ok=True)
    tail_rows = rec.kept + rec.skipped
    kept = int(con.sql("SELECT count(*) FROM ev").fetchall()[0][0]) - tail_rows + rec.kept
    damage = None if rec.damage_offset is None else cut.tail_start + rec.damage_offset - 1
    return rec, kept, damage


def parse(
    path: Path,
    scratch: Path,
    trace_id: str,
    rank_hint: int | None = None,
    threads: int | None = None,
    memory: int | None = None,
) -> ParsedTrace:
    """Parse one Kineto/Chrome trace file (see `_parse`); database errors become TraceFormatError. `memory` caps
    DuckDB's memory (bytes; default `_memory_limit`)."""
    try:
        return _parse(path, scratch, trace_id, rank_hint, threads, memory)
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        first = first.replace(str(scratch), "<scratch>")  # never show where the scratch files are
        raise TraceFormatError(path, f"could not be read as a Chrome/Kineto trace ({first})") from exc


def _parse(
    path: Path, scratch: Path, trace_id: str, rank_hint: int | None, threads: int | None, memory: int | None = None
) -> ParsedTrace:
    """Parse one Kineto/Chrome trace file.

    `scratch` is a private directory for temporary files; `rank_hint` is used when the trace
    itself does not record its rank (no `distributedInfo.rank`).
    """
    timings: dict[str, float] = {}
    workers = threads or os.cpu_count() or 1  # DuckDB threads, and pieces of the events array
    with timed_stage(timings, "extract"):
        extracted = jsonscan.extract_events(path, scratch, pieces=workers)
    warnings = list(extracted.warnings)
    database = str(scratch / "work.duckdb") if os.environ.get("TRACEVIEW_DISKDB") else ":memory:"
    con = duckdb.connect(
        database,
        config={
            "threads": workers,
            "temp_directory": str(scratch),
            "memory_limit": f"{memory >> 20}MB" if memory else _memory_limit(path),
        },
    )
    con.execute("SET preserve_insertion_order = true")
    events_path = extracted.events_path
    recovery = not extracted.complete
    if extracted.complete:
        split = extracted.split or jsonscan.split_events(events_path, workers)
        try:
            with timed_stage(timings, "read_json"):
                _load_events(con, split.parts)
        except duckdb.InvalidInputException:
            recovery = True
            jsonscan.join_events(split)  # the tolerant path reads the array whole
        for part in split.parts[1:]:
            part.unlink(missing_ok=True)
    if recovery:
        with timed_stage(timings, "recover"):
            warnings += _load_damaged(con, path, extracted, scratch, workers)
    events_path.unlink(missing_ok=True)

    event_count = int(con.sql("SELECT count(*) FROM ev").fetchall()[0][0])
    with_phase = int(con.sql("SELECT count(ph) FROM ev").fetchall()[0][0])
    if event_count and not with_phase:
        raise TraceFormatError(path, "expected trace events with a 'ph' field, found JSON objects without one")
    unmodelled = con.sql(
        "SELECT string_agg(DISTINCT ph, ','), count(*) FROM ev"
        " WHERE ph NOT IN ('X', 'B', 'E', 'i', 'I', 'R', 'C', 's', 't', 'f', 'M', '__skipped__')"
    ).fetchall()[0]
    if unmodelled[1]:
        warnings.append(f"{unmodelled[1]} events of phases {unmodelled[0]} are not modelled and were skipped")

    info = _trace_info(extracted.top_level, rank_hint, warnings)
    builder = _Builder(con, path, info["base_time_ns"], _vendor(extracted.top_level, con), workers, extracted.top_level)
    for stage in (builder.build_slices, builder.build_links, builder.settle_event_tables):
        with timed_stage(timings, stage.__name__):
            stage()
    warnings += builder.warnings
    warnings += _profiler_errors(extracted.top_level)

    slice_count = int(con.sql("SELECT count(*) FROM slices0").fetchall()[0][0])
    con.execute("CREATE TABLE top_level (kind VARCHAR, pid VARCHAR, tid VARCHAR, key VARCHAR, value VARCHAR)")
    top_rows = _top_level_rows(extracted.top_level)
    if top_rows:
        con.executemany("INSERT INTO top_level VALUES (?, ?, ?, ?, ?)", top_rows)
    rank = info["rank"]
    queries = {
        "memory": "SELECT * FROM memory_t",
        "counters": "SELECT * FROM counters_t",
        "flows": f"SELECT kind, flow_id, src_slice_id, dst_slice_id FROM flows_t ORDER BY {FLOWS_ORDER}",
        "instants": "SELECT * FROM instants_t",
        "metadata": "SELECT * FROM metadata_t UNION ALL SELECT * FROM top_level",
    }
    tables: dict[str, TableSource] = {
        name: DuckDBSource(TABLES[name], con, query, trace_id, rank) for name, query in queries.items()
    }
    steps = {"coll_steps": builder.nested.select(["slice_id", "step"])}
    tables["collectives"] = DuckDBSource(
        TABLES["collectives"], con, collectives.KINETO_QUERY, trace_id, rank, arrow=steps
    )
    builder.group_rows = row_group_rows(slice_count)
    tables["slices"] = RowGroupSource(TABLES["slices"], builder.slice_row_groups, trace_id, rank, free_text=("args",))
    if builder.flow_pairs is not None:
        tables["flows"] = RowGroupSource(TABLES["flows"], builder.flow_row_groups, trace_id, rank)
    info.update(
        {
            "format": FORMAT,
            "event_count": event_count,
            "slice_count": slice_count,
            "json_bytes": extracted.json_bytes,
            "timings": timings,
        }
    )
    return ParsedTrace(info=info, tables=tables, warnings=warnings, _closers=[con.close])
