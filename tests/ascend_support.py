"""Independent readers of Ascend profiler files, for the Ascend tests.

Everything here reads the files with the standard library only (csv, sqlite3, Decimal), so that
the tests check traceview's parsers against a second, simple implementation.
"""

from __future__ import annotations

import csv
import sqlite3
from collections import Counter
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
ASCEND = CORPUS / "ascend"
COMM_CORES = ("HCCL", "COMMUNICATION")


def us_to_ns(text: str) -> int:
    """Decimal µs as written (a TAB or quotes around it allowed) to integer ns."""
    value = Decimal(text.strip(' \t"'))
    return int((value * 1000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass
class KernelRows:
    """What a kernel_details.csv / op_summary file says, computed independently."""

    path: Path
    compute_count: int
    compute_ns: int
    comm_names: list[str]
    rows: int
    op_types: Counter


def read_kernel_csv(path: Path) -> KernelRows:
    """Count and sum the compute and communication rows of a kernel CSV with `csv` and Decimal."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    name = "Name" if rows and "Name" in rows[0] else "Op Name"
    core = "Accelerator Core" if rows and "Accelerator Core" in rows[0] else "Task Type"
    dur = "Duration(us)" if rows and "Duration(us)" in rows[0] else "Task Duration(us)"
    kind = "Type" if rows and "Type" in rows[0] else "OP Type"
    compute = [r for r in rows if r[core] not in COMM_CORES]
    return KernelRows(
        path=path,
        compute_count=len(compute),
        compute_ns=sum(us_to_ns(r[dur]) for r in compute),
        comm_names=sorted(r[name] for r in rows if r[core] in COMM_CORES),
        rows=len(rows),
        op_types=Counter(None if r[kind] == "N/A" else r[kind] for r in compute),
    )


def sqlite_ro(path: Path) -> sqlite3.Connection:
    """Open a database immutable: nothing is written next to it (no -shm / -wal)."""
    return sqlite3.connect(path.resolve().as_uri() + "?mode=ro&immutable=1", uri=True)


@dataclass
class DbKernels:
    """Kernels and communication ops of an Ascend SQLite export, computed independently."""

    path: Path
    compute_count: int
    compute_ns: int
    comm_names: list[str]
    op_types: Counter
    cti_rows: int


def read_db(path: Path) -> DbKernels:
    """COMPUTE_TASK_INFO joined with TASK, and COMMUNICATION_OP, straight from SQLite."""
    con = sqlite_ro(path)
    try:
        kernels = con.execute(
            "SELECT t.endNs - t.startNs, (SELECT value FROM STRING_IDS WHERE id = c.opType)"
            " FROM COMPUTE_TASK_INFO c JOIN TASK t USING (globalTaskId)"
        ).fetchall()
        comm = con.execute("SELECT (SELECT value FROM STRING_IDS WHERE id = opName) FROM COMMUNICATION_OP").fetchall()
        cti_rows = con.execute("SELECT count(*) FROM COMPUTE_TASK_INFO").fetchone()[0]
    finally:
        con.close()
    return DbKernels(
        path=path,
        compute_count=len(kernels),
        compute_ns=sum(int(d) for d, _ in kernels),
        comm_names=sorted(n for (n,) in comm),
        op_types=Counter(None if t == "N/A" else t for _, t in kernels),
        cti_rows=cti_rows,
    )


def query(store: Path, sql: str) -> list[tuple]:
    """Run SQL over a store's Parquet tables (views named like the tables), not through traceview."""
    with duckdb.connect() as con:
        for table in ("traces", "slices", "npu_kernel_metrics", "steps", "memory", "counters", "flows", "metadata"):
            pattern = str(store / table / "*.parquet").replace("'", "''")
            if list((store / table).glob("*.parquet")):
                con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{pattern}', union_by_name = true)")
        return con.sql(sql).fetchall()


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every file and directory under `root`: to prove nothing was written."""
    entries = {".": (0, root.stat().st_mtime_ns)}
    for path in sorted(root.rglob("*")):
        st = path.stat()
        entries[path.relative_to(root).as_posix()] = (st.st_size if path.is_file() else 0, st.st_mtime_ns)
    return entries


# The step breakdown of torch_npu's step_trace_time.csv recomputed from the device slices:
# Computing = union of kernel intervals; Communication(Not Overlapped) = union of kernels and
# communication ops minus Computing; Free = the step's device span minus that union.
STEP_BREAKDOWN_SQL = """
WITH iv AS (
  SELECT trace_id, step, c.cls, ts_ns AS s, ts_ns + dur_ns AS e
  FROM slices, (VALUES ('compute'), ('all')) c(cls)
  WHERE device_type = 'npu' AND step IS NOT NULL AND (kind = 'kernel' OR (kind = 'comm' AND c.cls = 'all'))
), ordered AS (
  SELECT *, max(e) OVER (PARTITION BY trace_id, step, cls ORDER BY s, e
                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end
  FROM iv
), grouped AS (
  SELECT *, sum(CASE WHEN prev_end IS NULL OR s > prev_end THEN 1 ELSE 0 END)
              OVER (PARTITION BY trace_id, step, cls ORDER BY s, e ROWS UNBOUNDED PRECEDING) AS g
  FROM ordered
), merged AS (
  SELECT trace_id, step, cls, g, min(s) AS s, max(e) AS e FROM grouped GROUP BY ALL
), unions AS (
  SELECT trace_id, step, cls, sum(e - s) AS busy, max(e) - min(s) AS span FROM merged GROUP BY ALL
)
SELECT trace_id, step,
       max(busy) FILTER (WHERE cls = 'compute') AS computing_ns,
       max(busy) FILTER (WHERE cls = 'all') - coalesce(max(busy) FILTER (WHERE cls = 'compute'), 0)
         AS communication_not_overlapped_ns,
       max(span - busy) FILTER (WHERE cls = 'all') AS free_ns
FROM unions GROUP BY ALL
"""
