"""The DuckDB engine: a store opened as views named after the model's tables."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import duckdb

from traceview import store as store_mod
from traceview.devices import specs_table
from traceview.errors import UserError
from traceview.parsers.model import MODEL_VERSION
from traceview.paths import cache_store_for

if TYPE_CHECKING:
    import polars as pl

CONVENIENCE_VIEWS = {
    "kernels": (
        "Device kernels, compute and communication (slices of kind kernel, or comm on a device).",
        "SELECT * FROM slices WHERE kind = 'kernel' OR (kind = 'comm' AND device_type <> 'cpu')",
    ),
    "device_tasks": (
        "All work on a device: kernels, copies, sets and communication (no syncs or annotations).",
        "SELECT * FROM slices WHERE device_type <> 'cpu' AND kind IN ('kernel', 'memcpy', 'memset', 'comm')",
    ),
    "ops": ("Framework operators (slices of kind cpu_op).", "SELECT * FROM slices WHERE kind = 'cpu_op'"),
    "annotations": (
        "User annotations and steps (record_function ranges, ProfilerStep#N).",
        "SELECT * FROM slices WHERE kind IN ('annotation', 'step')",
    ),
}


# DuckDB types polars cannot take from Arrow (intervals) or takes wrongly (UHUGEINT): shown as text.
_AS_TEXT = ("INTERVAL", "UHUGEINT")


def _as_text(column: str, type_name: str) -> str:
    name = '"' + column.replace('"', '""') + '"'
    return f"CAST({name} AS VARCHAR) AS {name}" if type_name in _AS_TEXT else name


def _quote(path: Path | str) -> str:
    return "'" + str(path).replace("'", "''") + "'"


@dataclass
class Session:
    """An open store: run SQL over its tables and views."""

    store: Path
    con: duckdb.DuckDBPyConnection

    def sql(self, query: str, params: list | dict | None = None) -> pl.DataFrame:
        """Run one query; return the result as a polars DataFrame."""
        import polars as pl  # here, not at the top: `traceview ingest` and `schema` start faster without it

        relation = self.con.sql(query, params=params or None)
        if relation is not None and any(str(t) in _AS_TEXT for t in relation.types):
            relation = relation.project(
                ", ".join(_as_text(c, str(t)) for c, t in zip(relation.columns, relation.types, strict=True))
            )
        table = relation.to_arrow_table() if relation is not None else None
        # polars types from_arrow as DataFrame | Series; a Table (or None) always gives a DataFrame
        return cast(pl.DataFrame, pl.from_arrow(table))

    @property
    def manifest(self) -> dict:
        """The store's manifest (inputs, hashes, row counts, warnings)."""
        return store_mod.read_manifest(self.store)

    def close(self) -> None:
        """Close the database connection."""
        self.con.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


DEVICE_VIEWS = {
    "device_specs": "Published peak figures of accelerators (bandwidth, FLOP/s), see traceview/devices.py.",
    "trace_devices": "Per trace: the device name it records and the matching device_specs row (peaks).",
}


def _glob_literal(path: Path) -> str:
    """`path` as a DuckDB glob that matches only itself (a store may be named `run[1]` or `a*b`)."""
    return re.sub(r"([\[*?])", r"[\1]", str(path))


def connect(stores: Path | list[Path], trace_id: str | list[str] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the tables of one or more stores as views (of some traces: `trace_id`)."""
    from traceview.parsers.model import TABLES
    from traceview.parsers.parsed import empty_table

    stores = [stores] if isinstance(stores, Path) else list(stores)
    con = duckdb.connect()
    # Every query binds the views again, which reads each part file's footer: read them once per connection.
    con.execute("SET parquet_metadata_cache = true")
    union = "" if _one_schema(stores) else ", union_by_name = true"
    ids = [trace_id] if isinstance(trace_id, str) else trace_id
    parts = ["*.parquet"] if ids is None else [f"part-{_glob_literal(Path(i))}.parquet" for i in ids]
    for table, schema in TABLES.items():
        patterns = [
            f"{_glob_literal(store / table)}/{part}"
            for store in stores
            for part in parts
            if any((store / table).glob(part))
        ]
        if patterns:
            listing = "[" + ", ".join(_quote(p) for p in patterns) + "]"
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet({listing}{union})")
        else:  # a store written before this table existed: an empty view of the right shape
            # tables, not registered Arrow data: those are seen by this connection only, not by its cursors
            con.from_arrow(empty_table(schema)).create(f"_empty_{table}")
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM _empty_{table}")
    for view, (_, query) in CONVENIENCE_VIEWS.items():
        con.execute(f"CREATE VIEW {view} AS {query}")
    con.from_arrow(specs_table()).create("_device_specs")
    con.execute("CREATE VIEW device_specs AS SELECT * FROM _device_specs")
    con.execute(
        """
        CREATE VIEW trace_devices AS
        SELECT DISTINCT ON (t.trace_id) t.trace_id, t.rank, d.device_name, s.name AS spec, s.peak_bw_bytes_per_s,
               s.peak_flops, s.source, s.link_name, s.link_transport, s.link_bw_bytes_per_s, s.link_source
        FROM traces t
        LEFT JOIN (SELECT trace_id, unnest(device_names) AS device_name FROM traces) d USING (trace_id)
        LEFT JOIN device_specs s ON d.device_name ILIKE s.pattern
        ORDER BY t.trace_id, s.priority NULLS LAST
        """
    )
    return con


def _one_schema(stores: list[Path]) -> bool:
    """True when every store's manifest records this model version: their part files then have one table's
    columns each, and DuckDB may read them by the first file's schema instead of reading every file's footer to
    unite them (`union_by_name`, a few ms per file). A file that differed would fail the query, not change it."""
    for store in stores:
        try:
            manifest = store_mod.read_manifest(store)
        except UserError:
            return False
        if not isinstance(manifest, dict) or manifest.get("model_version") != MODEL_VERSION:
            return False
    return True


def resolve_store(target: Path, cache_dir: Path | None = None, force: bool = False) -> Path:
    """A store for TARGET: the store itself, or an on-the-fly ingest into the cache."""
    if not target.exists():
        raise UserError(f"{target}: no such file or directory")
    if store_mod.is_store(target):
        return target
    result = store_mod.ingest([target], cache_store_for([target], cache_dir), force=force)
    return result.store


def open_target(target: Path | str, cache_dir: Path | str | None = None) -> Session:
    """Open a trace file, a dump directory or a store as a Session."""
    store = resolve_store(Path(target), Path(cache_dir) if cache_dir else None)
    return Session(store, connect(store))
