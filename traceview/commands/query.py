"""`traceview query`: run SQL over a store and render the result.

Control characters in the data never reach a terminal raw: the table shows them escaped (`\\x1b`), JSON
escapes them losslessly (`\\u001b`, also DEL, C1 controls and bidi overrides), and CSV is escaped like the
table when printed (the CLI's output choke point) but written byte-exact with `-o FILE`.
"""

from __future__ import annotations

import enum
import io
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
from rich.console import Console
from rich.table import Table
from rich.text import Text

from traceview import jsonify
from traceview.engine import open_target
from traceview.errors import UserError
from traceview.reports.safe import json_terminal_safe, terminal_safe

if TYPE_CHECKING:
    import polars as pl


class OutputFormat(enum.StrEnum):
    """How query results are written."""

    table = "table"
    csv = "csv"
    json = "json"


def render(frame: pl.DataFrame, fmt: OutputFormat) -> str:
    """Render a result frame as a text table, CSV, or a JSON list of row objects."""
    if fmt is OutputFormat.json:
        return json_terminal_safe(jsonify.dumps(frame.to_dicts())) + "\n"
    if fmt is OutputFormat.csv:
        nested = [name for name, dtype in frame.schema.items() if dtype.is_nested()]
        if nested:
            import polars as pl  # here, not at the top: the CLI imports this module for every command

            frame = frame.with_columns(
                pl.col(name).map_elements(jsonify.dumps, return_dtype=pl.String) for name in nested
            )
        return frame.write_csv()
    table = Table(show_edge=False, header_style="bold")
    for name in frame.columns:
        table.add_column(Text(terminal_safe(name)), overflow="fold")
    for row in frame.iter_rows():
        table.add_row(*(Text("" if v is None else terminal_safe(str(v))) for v in row))
    buffer = io.StringIO()
    Console(file=buffer, width=200, no_color=True, highlight=False).print(table)
    return buffer.getvalue()


def run_query(target: Path, sql: str, cache_dir: Path | None = None) -> pl.DataFrame:
    """Run `sql` over TARGET (trace file, dump directory or store)."""
    with open_target(target, cache_dir=cache_dir) as session:
        try:
            return session.sql(sql)
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0]
            raise UserError(f"query failed: {first}") from exc
