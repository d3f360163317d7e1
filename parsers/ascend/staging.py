"""The staging area every Ascend source writes into, and its conversion to the model.

Each source (timeline JSON, kernel CSV, SQLite export, memory CSVs) inserts rows into the
`st_*` tables of one DuckDB connection. `Staging.finish` then derives what needs all sources at
once (steps of host and device slices, nesting on each track) and hands the model's tables to
the store as DuckDB queries: `slices` streamed in row groups to pyarrow's Parquet writer, the
others written by DuckDB's COPY.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from ..arrownp import numpy_column
from ..model import TABLES
from ..nesting import nest
from ..parsed import DuckDBSource, ParsedTrace, RowGroupSource, TableSource, arrow_cursor, table_row_groups
from ..slice_order import GROUP_SQL, row_group_rows, row_groups

_TIMING = bool(os.environ.get("TRACEVIEW_TIMING"))

STAGING_DDL = {
    "st_slices": """slice_id BIGINT, ts_ns BIGINT, dur_ns BIGINT, name VARCHAR, cat VARCHAR, kind VARCHAR,
        device_type VARCHAR, device_id INTEGER, pid VARCHAR, tid VARCHAR, stream BIGINT, core VARCHAR,
        correlation BIGINT, external_id BIGINT, step BIGINT, input_dims VARCHAR, input_types VARCHAR, args VARCHAR""",
    "st_metrics": """slice_id BIGINT, device_id INTEGER, step BIGINT, name VARCHAR, op_type VARCHAR, core VARCHAR,
        stream BIGINT, task_id BIGINT, op_state VARCHAR, block_dim BIGINT, mix_block_dim BIGINT,
        hf32_eligible BOOLEAN, input_shapes VARCHAR, input_dtypes VARCHAR, input_formats VARCHAR,
        output_shapes VARCHAR, output_dtypes VARCHAR, output_formats VARCHAR, wait_ns BIGINT, aicore_ns BIGINT,
        aic_total_cycles BIGINT, aic_mac_ratio DOUBLE, aic_mte2_ratio DOUBLE, aiv_ns BIGINT,
        aiv_total_cycles BIGINT, aiv_vec_ratio DOUBLE, aiv_mte2_ratio DOUBLE, cube_utilization DOUBLE,
        model_id BIGINT, context_id BIGINT, aic_mac_ns BIGINT, aic_scalar_ns BIGINT, aic_scalar_ratio DOUBLE,
        aic_mte1_ns BIGINT, aic_mte1_ratio DOUBLE, aic_mte2_ns BIGINT, aic_fixpipe_ns BIGINT,
        aic_fixpipe_ratio DOUBLE, aic_icache_miss_rate DOUBLE, aiv_vec_ns BIGINT, aiv_mac_ns BIGINT,
        aiv_mac_ratio DOUBLE, aiv_scalar_ns BIGINT, aiv_scalar_ratio DOUBLE, aiv_mte1_ns BIGINT,
        aiv_mte1_ratio DOUBLE, aiv_mte2_ns BIGINT, aiv_mte3_ns BIGINT, aiv_mte3_ratio DOUBLE,
        aiv_icache_miss_rate DOUBLE, metrics VARCHAR""",
    "st_memory": """ts_ns BIGINT, device_type VARCHAR, device_id INTEGER, addr BIGINT, bytes BIGINT,
        total_allocated BIGINT, total_reserved BIGINT, pid VARCHAR, tid VARCHAR""",
    "st_counters": "ts_ns BIGINT, pid VARCHAR, name VARCHAR, series VARCHAR, value DOUBLE, unit VARCHAR",
    "st_flows": "kind VARCHAR, flow_id VARCHAR, src_slice_id BIGINT, dst_slice_id BIGINT",
    "st_instants": "ts_ns BIGINT, name VARCHAR, cat VARCHAR, pid VARCHAR, tid VARCHAR, scope VARCHAR, args VARCHAR",
    "st_metadata": "kind VARCHAR, pid VARCHAR, tid VARCHAR, key VARCHAR, value VARCHAR",
    "st_steps": """step BIGINT, device_id INTEGER, computing_ns BIGINT, communication_not_overlapped_ns BIGINT,
        overlapped_ns BIGINT, communication_ns BIGINT, free_ns BIGINT, stage_ns BIGINT, bubble_ns BIGINT,
        communication_not_overlapped_exclude_receive_ns BIGINT, preparing_ns BIGINT, source VARCHAR""",
    "st_collectives": """slice_id BIGINT, step BIGINT, name VARCHAR, op VARCHAR, "group" VARCHAR,
        group_desc VARCHAR, group_ranks INTEGER[], group_size INTEGER, seq BIGINT, ts_ns BIGINT, dur_ns BIGINT,
        bytes BIGINT, dtype VARCHAR, transit_ns BIGINT, wait_ns BIGINT, sync_ns BIGINT, idle_ns BIGINT,
        algorithm VARCHAR, source VARCHAR""",
    "st_comm_links": """step BIGINT, "group" VARCHAR, op VARCHAR, op_type VARCHAR, src_rank INTEGER, dst_rank INTEGER,
        src_local_rank INTEGER, dst_local_rank INTEGER, transport VARCHAR, bytes BIGINT, transit_ns BIGINT,
        bandwidth_gbps DOUBLE, source VARCHAR""",
    # Host-time windows of profiler steps (ProfilerStep#N ranges, STEP_TIME rows).
    "st_step_ranges": "step BIGINT, start_ns BIGINT, end_ns BIGINT",
}

_OUTPUT_TABLES = {
    "memory": "st_memory",
    "counters": "st_counters",
    "flows": "st_flows",
    "instants": "st_instants",
    "metadata": "st_metadata",
    "steps": "st_steps",
    "collectives": "st_collectives",
    "comm_links": "st_comm_links",
}


_METRICS_STATISTICS = ("trace_id", "rank", "slice_id", "device_id", "step")


class Staging:
    """One DuckDB connection holding the staging tables of a parse."""

    def __init__(self, scratch: Path, input_bytes: int, threads: int | None = None) -> None:
        # A memory budget makes DuckDB spill big joins and sorts to scratch instead of growing.
        budget = max(1400 << 20, min(int(input_bytes * 1.2), 8 << 30))
        self.threads = threads or os.cpu_count() or 1
        self.con = duckdb.connect(
            config={
                "threads": self.threads,
                "temp_directory": str(scratch),
                "memory_limit": f"{budget >> 20}MB",
            }
        )
        self.con.execute("SET preserve_insertion_order = true")
        self.con.execute("SET enable_progress_bar = false")
        self.scratch = scratch
        self.warnings: list[str] = []
        self.event_count = 0
        self.timings: dict[str, float] = {}  # stages timed outside `sql`
        # Where npu_kernel_metrics comes from when not st_metrics (the kernel CSV, read in place):
        # a query, or the rows as Arrow, made when they are written.
        self.metrics_query: str | None = None
        self.metrics_arrow: Callable[[], pa.Table] | None = None
        # Arrow tables queried by name (`register`): the kernel table, device slices given as Arrow.
        self.arrow: dict[str, pa.Table] = {}
        self._pending_slices: tuple[Callable[[], pa.Table], int] | None = None  # see add_device_slices
        for table, columns in STAGING_DDL.items():
            self.con.execute(f"CREATE TABLE {table} ({columns})")

    def sql(self, query: str, params: list | None = None) -> None:
        """Run one statement (timed on stderr when TRACEVIEW_TIMING is set)."""
        if not _TIMING:
            self.con.execute(query, params)
            return
        start, cpu = time.perf_counter(), time.process_time()
        self.con.execute(query, params)
        head = " ".join(query.split())[:80]
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        print(f"[timing] {wall:7.3f} s wall {cpu:7.3f} s cpu  {head}", file=sys.stderr)

    def scalar(self, query: str):
        """The first value of a query's first row."""
        rows = self.con.execute(query).fetchall()
        return rows[0][0] if rows else None

    def next_slice_id(self) -> int:
        """A slice id above every id used so far."""
        return int(self.scalar(f"SELECT coalesce(max(slice_id), -1) + 1 FROM {self.slices_sql}") or 0)

    def add_arrow(self, table: str, data: pa.Table) -> None:
        """Append an Arrow table to a staging table by column name."""
        self.con.register("arrow_in", data)
        try:
            self.con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM arrow_in")
        finally:
            self.con.unregister("arrow_in")

    def register(self, name: str, table: pa.Table) -> None:
        """Make `table` queryable as `name`, in place of what had that name (read, not copied)."""
        if name in self.arrow:
            self.con.unregister(name)
        self.con.register(name, table)
        self.arrow[name] = table

    def add_device_slices(self, table: pa.Table | Callable[[], pa.Table], rows: int = 0) -> None:
        """Device slices given as Arrow (the columns of st_slices): read in place as part of the
        slices, never updated (nothing links to them: no correlation, no external id).

        Given as a function making `rows` slices, they are made when first read: when written,
        where they are the only slices. The other tables' writes then start without waiting for them.
        """
        self._make_pending_slices()
        if callable(table):
            self._pending_slices = (table, rows)
            return
        if "device_slices" in self.arrow:
            table = pa.concat_tables([self.arrow["device_slices"], table])
        self.register("device_slices", table)

    def _make_pending_slices(self) -> None:
        if self._pending_slices is not None:
            make, _ = self._pending_slices
            self._pending_slices = None
            self.add_device_slices(make())

    @property
    def slices_sql(self) -> str:
        """All the slices: st_slices and the device slices given as Arrow."""
        self._make_pending_slices()
        if "device_slices" not in self.arrow:
            return "st_slices"
        return "(SELECT * FROM st_slices UNION ALL BY NAME SELECT * FROM device_slices)"

    def add_metadata(self, rows: list[tuple]) -> None:
        """Append (kind, pid, tid, key, value) rows."""
        if rows:
            self.con.executemany("INSERT INTO st_metadata VALUES (?, ?, ?, ?, ?)", rows)

    def finish(self, info: dict, trace_id: str) -> ParsedTrace:
        """Derive steps and nesting, and return the model's tables as sources for the store to write."""
        self._drop_scratch_tables()
        self._assign_steps()
        # Device slices alone, given as Arrow, are made, nested and written when the store asks for them.
        lone_device_slices = self._lone_device_slices()
        if lone_device_slices is None:
            self._nest()
            info["slice_count"] = int(self.scalar(f"SELECT count(*) FROM {self.slices_sql}"))
        else:
            info["slice_count"] = lone_device_slices[1]
        rank = int(info["rank"])
        info.setdefault("event_count", self.event_count)
        info.setdefault("timings", {}).update(self.timings)
        tables: dict[str, TableSource] = {
            name: DuckDBSource(TABLES[name], self.con, f"SELECT * FROM {table}", trace_id, rank)
            for name, table in _OUTPUT_TABLES.items()
        }
        group_rows = row_group_rows(info["slice_count"])
        tables["npu_kernel_metrics"] = self._metrics_source(trace_id, rank, group_rows, lone_device_slices is not None)

        def slice_row_groups() -> Iterator[pa.Table]:
            if lone_device_slices is not None:
                return table_row_groups(self._with_nesting(lone_device_slices[0]()), group_rows)
            slices = f"""
                SELECT s.*, n.depth, n.parent_id, n.overlaps_parent, n.self_ns, {GROUP_SQL} AS slice_group
                FROM {self.slices_sql} s JOIN nested n USING (slice_id)
                ORDER BY slice_group, slice_id
            """
            # Sorted by group already: `row_groups` only cuts the stream where a group ends.
            rows = arrow_cursor(self.con, self.arrow).sql(slices).to_arrow_reader(group_rows)
            return row_groups(rows, "slice_group", group_rows)

        tables["slices"] = RowGroupSource(
            TABLES["slices"],
            slice_row_groups,
            trace_id,
            rank,
            free_text=("args",),
            dictionaries=lone_device_slices is not None,  # kd's text columns (`kd_slices`)
        )
        return ParsedTrace(info=info, tables=tables, warnings=self.warnings, _closers=[self.con.close])

    def _metrics_source(self, trace_id: str, rank: int, group_rows: int, beside_slices: bool) -> TableSource:
        """npu_kernel_metrics: from `metrics_arrow`, `metrics_query` or st_metrics. Written on a
        thread of its own (`beside_slices`) while the slices are nested and written from Arrow: the
        two take both cores. Beside DuckDB's slices query (a timeline dump) that saved nothing and
        added 50 MB to the peak RSS."""
        schema = TABLES["npu_kernel_metrics"]
        if self.metrics_arrow is not None:
            make = self.metrics_arrow
            return RowGroupSource(
                schema,
                lambda: table_row_groups(make(), group_rows),
                trace_id,
                rank,
                dictionaries=True,
                background=beside_slices,
                # Rows in no particular order: min/max of a metric prunes no row group, and writing
                # them all took 0.1 of 0.7 s for 1 M rows. The ids keep theirs, for joins.
                statistics=_METRICS_STATISTICS,
            )
        metrics = self.metrics_query or "SELECT * FROM st_metrics"
        if self.scalar(f"SELECT count(*) FROM ({metrics}) WHERE step IS NULL OR device_id IS NULL"):
            metrics = f"""
                SELECT m.* REPLACE (coalesce(m.step, s.step) AS step, coalesce(m.device_id, s.device_id) AS device_id)
                FROM ({metrics}) m
                LEFT JOIN (SELECT slice_id, step, device_id FROM {self.slices_sql}) s USING (slice_id)
            """
        # Per-kernel metrics rows are wide (shapes, formats, the metrics JSON): 30,720 rows a group
        # write 1 M of them in 2.7 s instead of 3.4 s under the same memory budget. Their order does
        # not matter (they are joined on slice_id), and an unordered write is faster.
        return DuckDBSource(
            schema,
            self.con,
            metrics,
            trace_id,
            rank,
            row_group_rows=30_720,
            keep_order=False,
            arrow=dict(self.arrow),
            background=beside_slices,
        )

    def _lone_device_slices(self) -> tuple[Callable[[], pa.Table], int] | None:
        """When the slices are all device slices given as Arrow (one group, the first): a function
        making them, and their count. They are written straight from Arrow, without DuckDB's join
        and sort. Else None."""
        if self.scalar("SELECT count(*) FROM st_slices"):
            return None
        if self._pending_slices is not None:
            return self._pending_slices
        device = self.arrow.get("device_slices")
        return None if device is None else ((lambda: device), device.num_rows)

    def _with_nesting(self, device: pa.Table) -> pa.Table:
        """`device` in slice_id order (DuckDB's order for one group), with its nesting columns."""
        ids = numpy_column(device.column("slice_id"))
        if not np.all(ids[1:] > ids[:-1]):
            device = device.sort_by("slice_id")
        # One thread: the metrics write beside it is the longer, and needs the other core.
        nested = self._nesting(arrow_cursor(self.con, {"device_slices": device}), "device_slices", workers=1)
        for name in nested.column_names[1:]:
            device = device.append_column(name, nested.column(name))
        return device

    def _drop_scratch_tables(self) -> None:
        # The sources' own tables (the timeline's events, matches, ...) are not read from here on:
        # their memory goes to the writes (a 1 M-kernel dump peaked at 2.2 GB with them kept).
        tables = self.con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE NOT internal AND database_name = 'memory'"
        ).fetchall()
        for (table,) in tables:
            if table not in STAGING_DDL:
                self.con.execute(f'DROP TABLE "{table}"')

    def _assign_steps(self) -> None:
        ranges = int(self.scalar("SELECT count(*) FROM st_step_ranges"))
        if not ranges:
            self.sql(
                """INSERT INTO st_step_ranges
                   SELECT TRY_CAST(regexp_extract(name, '#(\\d+)', 1) AS BIGINT), ts_ns, ts_ns + dur_ns
                   FROM st_slices WHERE kind = 'step' AND device_type = 'cpu'"""
            )
        # Host slices fall in a step by time; device slices inherit it from their launch.
        self.sql(
            """
            CREATE TEMP TABLE host_steps AS
            SELECT x.slice_id, CASE WHEN x.ts_ns < r.end_ns THEN r.step END AS step
            FROM (SELECT slice_id, ts_ns FROM st_slices WHERE device_type = 'cpu' AND step IS NULL) x
            ASOF LEFT JOIN (SELECT * FROM st_step_ranges ORDER BY start_ns) r ON x.ts_ns >= r.start_ns
            """
        )
        self.sql(
            """UPDATE st_slices SET step = h.step FROM host_steps h
               WHERE st_slices.slice_id = h.slice_id AND h.step IS NOT NULL"""
        )
        # Device work takes the step of the host call it links to: by correlation first, then by external id.
        for key in ("correlation", "external_id"):
            self.sql(
                f"""
                UPDATE st_slices SET step = l.step
                FROM (SELECT {key}, min(step) AS step FROM st_slices
                      WHERE device_type = 'cpu' AND {key} IS NOT NULL AND step IS NOT NULL GROUP BY {key}) l
                WHERE st_slices.device_type <> 'cpu' AND st_slices.step IS NULL
                  AND st_slices.{key} = l.{key}
                """
            )
        self._assign_unlaunched_steps()

    def _assign_unlaunched_steps(self) -> None:
        """Device work no host call launched (DMA, graph and queue tasks) takes the step whose window holds its start:
        the step's device window (its first to its last device task), else its host range (as parsers/steps.py)."""
        self.sql(
            """
            CREATE TEMP TABLE unlaunched_steps AS
            SELECT x.slice_id, coalesce(CASE WHEN x.ts_ns < d.end_ns THEN d.step END,
                                        CASE WHEN x.ts_ns < r.end_ns THEN r.step END) AS step
            FROM (SELECT slice_id, ts_ns FROM st_slices s
                  WHERE device_type <> 'cpu' AND step IS NULL
                    AND NOT EXISTS (SELECT 1 FROM st_slices h WHERE h.device_type = 'cpu'
                                    AND (h.correlation = s.correlation OR h.external_id = s.external_id))) x
            ASOF LEFT JOIN (SELECT step, min(ts_ns) AS start_ns, max(ts_ns + dur_ns) AS end_ns FROM st_slices
                            WHERE device_type <> 'cpu' AND step IS NOT NULL GROUP BY step ORDER BY start_ns) d
              ON x.ts_ns >= d.start_ns
            ASOF LEFT JOIN (SELECT * FROM st_step_ranges ORDER BY start_ns) r ON x.ts_ns >= r.start_ns
            """
        )
        self.sql(
            """UPDATE st_slices SET step = u.step FROM unlaunched_steps u
               WHERE st_slices.slice_id = u.slice_id AND u.step IS NOT NULL"""
        )

    def _nest(self) -> None:
        self.con.register("nested_arrow", self._nesting(self.con, self.slices_sql))
        self.sql("CREATE TABLE nested AS SELECT * FROM nested_arrow")
        self.con.unregister("nested_arrow")

    def _nesting(self, con: duckdb.DuckDBPyConnection, slices: str, workers: int | None = None) -> pa.Table:
        """The nesting columns of `slices` (a table or subquery on `con`), row for row, nested on
        `workers` threads (default: the staging's)."""
        table = con.sql(f"SELECT slice_id, hash(pid, tid) AS track, ts_ns, dur_ns FROM {slices}").to_arrow_table()
        slice_id = numpy_column(table.column("slice_id"))
        track = numpy_column(table.column("track")).astype(np.uint64).view(np.int64)
        ts, dur = numpy_column(table.column("ts_ns")), numpy_column(table.column("dur_ns"))
        return pa.table(nest(track, ts, dur, slice_id, workers=workers or self.threads).columns(slice_id))
