"""Read-only access to SQLite exports, copied into DuckDB as Arrow tables.

MindStudio Insight writes into the databases it opens, and even a read-only SQLite connection
creates `-shm`/`-wal` files next to a WAL-mode database. So a database is opened `immutable`
(no locks, no side files); when its `-wal` holds pages not yet checkpointed, a private copy in
the scratch directory is read instead. Nothing is ever written next to the dump.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pyarrow as pa

from ..arrownp import python_array
from ..errors import TraceFormatError
from .layout import SQLITE_MAGIC
from .staging import Staging

BATCH_ROWS = 200_000
# text as large_string: one batch of a table of long texts (args, call stacks) may hold over 2 GiB
_TYPES = {"int": (pa.int64(), "INTEGER"), "float": (pa.float64(), "REAL"), "text": (pa.large_string(), "TEXT")}


def _describe(head: bytes, size: int) -> str:
    if size == 0:
        return "an empty file"
    text = head[:32]
    if text and all(32 <= b < 127 or b in b"\r\n\t" for b in text):
        first = text.decode("ascii", "replace").splitlines()[0][:24] if text.strip() else ""
        return f"text starting with {first!r}"
    return "binary data that is not SQLite"


def open_readonly(path: Path, scratch: Path) -> sqlite3.Connection:
    """Open `path` without writing anything next to it."""
    with open(path, "rb") as fh:
        head = fh.read(100)
    if not head.startswith(SQLITE_MAGIC):
        raise TraceFormatError(path, f"expected an SQLite database, found {_describe(head, path.stat().st_size)}")
    wal = path.with_name(path.name + "-wal")
    if wal.is_file() and wal.stat().st_size > 0:
        copy = scratch / path.name
        shutil.copyfile(path, copy)
        shutil.copyfile(wal, scratch / wal.name)
        con = sqlite3.connect(str(copy))
    else:
        con = sqlite3.connect(path.resolve().as_uri() + "?mode=ro&immutable=1", uri=True)
    try:
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        con.close()
        raise TraceFormatError(path, f"expected an SQLite database, found a damaged file ({exc})") from exc
    return con


class SqliteSource:
    """The tables of one database and a way to copy the columns we know into DuckDB."""

    def __init__(self, con: sqlite3.Connection) -> None:
        self.con = con
        self.tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def columns(self, table: str) -> set[str]:
        """Column names of `table` (empty when absent)."""
        if table not in self.tables:
            return set()
        return {row[1] for row in self.con.execute(f'PRAGMA table_info("{table}")')}

    def copy(self, st: Staging, table: str, target: str, wanted: dict[str, str]) -> bool:
        """Copy `wanted` columns ({name: int|float|text}) of `table` into DuckDB table `target`.

        Columns the database lacks come as NULL; returns False (and creates an empty table) when
        the table is absent.
        """
        present = self.columns(table)
        schema = pa.schema([(name, _TYPES[kind][0]) for name, kind in wanted.items()])
        select = ", ".join(
            f'CAST("{name}" AS {_TYPES[kind][1]})' if name in present else "NULL" for name, kind in wanted.items()
        )
        batches: list[pa.RecordBatch] = []
        if present:
            cursor = self.con.execute(f'SELECT {select} FROM "{table}"')
            while rows := cursor.fetchmany(BATCH_ROWS):
                columns = list(zip(*rows, strict=True))
                arrays = [python_array(col, field.type) for col, field in zip(columns, schema, strict=True)]
                batches.append(pa.RecordBatch.from_arrays(arrays, schema=schema))
        data = pa.Table.from_batches(batches, schema=schema)
        st.con.register("sqlite_in", data)
        try:
            st.sql(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM sqlite_in")
        finally:
            st.con.unregister("sqlite_in")
        return bool(present)
