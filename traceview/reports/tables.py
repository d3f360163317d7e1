"""A query result as the terminal and HTML reports show it: ranked by impact, capped, in human units.

What each column is comes from the query's header (`traceview.packs.Presentation`): its unit (chosen per
column: ns/µs/ms/s, B/kB/MB/GB, MB/s/GB/s/TB/s, %; never an exponent), the column that orders the rows by
impact, the columns a row needs to say anything, and the line to show when nothing is left. Time stamps are
shown from the start of their trace, long names shortened so that different names stay different (the full
name kept for the HTML title), columns with no value left out. The JSON report keeps the raw values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import polars as pl

from traceview.packs import Presentation, Unit
from traceview.reports.names import shorten_names
from traceview.sandbox import QueryResult
from traceview.units import column_scale, is_number, readable_number

NO_ROWS = "no rows"
SUFFIXES = ("_bytes_per_s", "_ns", "_pct")  # dropped from a column's label, which shows the unit instead
LIST_ITEMS_SHOWN = 3  # items of a list cell shown before "+N more"


@dataclass
class Cell:
    """One shown value: its text, the full text where the text is shortened, the items of a list."""

    text: str
    full: str = ""
    items: list[Cell] | None = None


@dataclass
class Column:
    """A shown column: its label (with the unit), and `hint`: the column's name and what it means."""

    name: str
    label: str
    hint: str
    numeric: bool = False


@dataclass
class Table:
    """A result ready to show; `empty` says why there is nothing to show (then no columns or rows)."""

    name: str
    title: str
    description: str
    columns: list[Column] = field(default_factory=list)
    rows: list[list[Cell]] = field(default_factory=list)
    total_rows: int = 0
    empty: str = ""
    legend: list[str] = field(default_factory=list)  # the denominators of the shares
    dropped_columns: int = 0
    order: str = ""  # the label of the column the rows are ranked by


def trace_starts(traces: list[dict]) -> dict[str, int | None]:
    """trace_id -> the trace's first time stamp (`start_ns` of the report's trace rows)."""
    return {trace["trace_id"]: trace.get("start_ns") for trace in traces if "trace_id" in trace}


def ranks_tell_traces_apart(traces: list[dict]) -> bool:
    """Whether the rank column alone says which trace a row is of (then trace_id is not shown)."""
    ranks = [trace.get("rank") for trace in traces]
    return len(set(ranks)) == len(ranks)


def prepare(
    result: QueryResult, starts: dict[str, int | None], limit: int, name_width: int, hide_trace_id: bool = True
) -> Table:
    """RESULT's rows in impact order, the first LIMIT of them formatted (STARTS: trace_id -> start_ns);
    `hide_trace_id` where the rank column tells the traces apart."""
    query = result.query
    shown = query.presentation
    table = Table(query.name, query.title, query.description)
    frame = _ranked(_with_evidence(result.frame, shown), shown) if result.frame is not None else pl.DataFrame()
    if frame.is_empty():
        table.empty = shown.empty or NO_ROWS
        return table
    table.total_rows = frame.height
    table.order = ", ".join(_label_base(name) for name, _ in shown.order if name in frame.columns)
    head = frame.head(limit)
    columns = [c for c in frame.columns if frame[c].null_count() < frame.height]
    hide_trace_id = hide_trace_id and ("rank" in frame.columns or len(starts) <= 1)
    columns = [c for c in columns if not (hide_trace_id and c == "trace_id")]
    table.dropped_columns = sum(frame[c].null_count() == frame.height for c in frame.columns)
    units = shown.units_of(columns)
    origins = _origins(head, starts)
    cells: list[list[Cell]] = []
    for name in columns:
        column, values = _column(name, units.get(name), head[name].to_list(), origins, name_width)
        table.columns.append(column)
        cells.append(values)
    table.rows = [list(row) for row in zip(*cells, strict=True)]
    table.legend = [f"{_label_base(name)}: {unit}" for name, unit in units.items() if unit.of]
    return table


def _with_evidence(frame: pl.DataFrame, shown: Presentation) -> pl.DataFrame:
    """The rows that have a value in one of the `evidence` columns (all rows when none is declared)."""
    present = [name for name in shown.evidence if name in frame.columns]
    if not present or frame.is_empty():
        return frame
    return frame.filter(pl.any_horizontal([pl.col(name).is_not_null() for name in present]))


def _ranked(frame: pl.DataFrame, shown: Presentation) -> pl.DataFrame:
    """FRAME sorted by the `order` columns (nulls last; ties keep the query's order)."""
    keys = [(name, descending) for name, descending in shown.order if name in frame.columns]
    if not keys or frame.is_empty():
        return frame
    names, descending = zip(*keys, strict=True)
    return frame.sort(list(names), descending=list(descending), nulls_last=True, maintain_order=True)


def _origins(frame: pl.DataFrame, starts: dict[str, int | None]) -> list[int | None]:
    """Per row, the start of its trace (the earliest start when the row names no trace)."""
    known = [start for start in starts.values() if start is not None]
    default = min(known) if known else None
    if "trace_id" not in frame.columns:
        return [default] * frame.height
    return [starts.get(trace_id, default) if trace_id is not None else default for trace_id in frame["trace_id"]]


def _label_base(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name.removesuffix(suffix).replace("_", " ")
    return name.replace("_", " ")


def _column(
    name: str, unit: Unit | None, values: list, origins: list[int | None], name_width: int
) -> tuple[Column, list[Cell]]:
    """The column's header and its cells."""
    hint = name + (f": {unit}" if unit else "")
    if unit is not None and unit.unit == "ts":
        pairs = zip(values, origins, strict=True)
        values = [v - o if isinstance(v, int | float) and o is not None else v for v, o in pairs]
        hint += " (shown from the start of the trace)"
    kind = unit.unit if unit is not None else ""
    if kind in ("ns", "ts", "bytes", "B/s"):
        factor, label = column_scale("ns" if kind == "ts" else kind, values)
        suffix = f"{label} from start" if kind == "ts" else label
        column = Column(name, f"{_label_base(name)} ({suffix})", hint, numeric=True)
        return column, [Cell(readable_number(v / factor) if is_number(v) else _plain(v)) for v in values]
    if kind == "%":
        return Column(name, f"{_label_base(name)} %", hint, numeric=True), [
            Cell(readable_number(v) if is_number(v) else _plain(v)) for v in values
        ]
    if any(isinstance(v, list) for v in values):
        return Column(name, _label_base(name), hint), [_list_cell(v, name_width) for v in values]
    if any(isinstance(v, str) for v in values):
        short = shorten_names((v for v in values if isinstance(v, str)), name_width)
        return Column(name, _label_base(name), hint), [
            Cell(short[v], v if short[v] != v else "") if isinstance(v, str) else Cell(_plain(v)) for v in values
        ]
    numeric = all(v is None or is_number(v) for v in values)
    return Column(name, _label_base(name), hint, numeric=numeric), [Cell(_plain(v)) for v in values]


def _plain(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return readable_number(value) if math.isfinite(value) else str(value)
    return str(value)


def _list_cell(value: object, name_width: int) -> Cell:
    """A list value: its items shortened (distinct from each other), the first few as the cell's text."""
    if not isinstance(value, list):
        return Cell(_plain(value))
    texts = [_plain(item) for item in value]
    short = shorten_names(texts, name_width)
    items = [Cell(short[text], text if short[text] != text else "") for text in texts]
    shown = ", ".join(item.text for item in items[:LIST_ITEMS_SHOWN])
    more = len(items) - LIST_ITEMS_SHOWN
    return Cell(shown + (f" … +{more} more" if more > 0 else ""), "\n".join(texts), items)
