"""CSV quirks of Ascend profiler output, handled once.

Every CSV is read by DuckDB with all columns as text; the SQL helpers here then clean and
convert each field: a trailing TAB on timestamps (`"1736408883704643.212\\t"`), literal quotes
around shapes (`"32,3,224,224"`), `N/A` and empty meaning missing, `4294967295` meaning
"invalid id", CRLF line ends. Decimal µs text becomes integer ns through DECIMAL arithmetic,
never through a float. `us_text_to_ns` is the same conversion in Python.

Numbers in scientific notation (`1.69512E+15`: a file re-saved by a spreadsheet) are read exactly
or refused: `settle_scientific` rewrites them as positional decimals before the SQL reads them,
and empties those that are no whole number of the target unit (ns, bytes).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, Inexact, InvalidOperation, localcontext
from pathlib import Path

import duckdb
import pyarrow as pa

from ..errors import TraceFormatError

UINT32_MAX = 4294967295
UINT64_MAX = 18446744073709551615
MISSING = ("N/A", "NA", "", "None", "null")
_STRIP = " \t\r\n\""
_UNIT = re.compile(r"\((KB|MB|GB|B|us|ms|ns|MB/s|GB/s|KB/s|B/s|%)\)\s*$", re.IGNORECASE)
_BYTE_FACTORS = {"b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30}
_STRIP_SQL = "chr(32) || chr(9) || chr(13) || chr(10) || chr(34)"
_MICRO = Decimal("0.000001")
# Scientific notation: a digit or point, then an exponent (`1.69512E+15`, `5e3`).
_SCIENTIFIC_SQL = "[0-9.][eE][+-]?[0-9]"
# Bounds on a scientific-notation number's significant digits and exponent: an int64 of ns or bytes has 19
# digits, a unit fraction (MB -> bytes) about 20 more; anything longer is refused without being expanded.
SCIENTIFIC_MAX_DIGITS = 40
SCIENTIFIC_MAX_EXPONENT = 40


def us_text_to_ns(text: str | None) -> int | None:
    """Decimal µs text (quirks allowed) to integer ns, exact; None when missing or not a number."""
    if text is None:
        return None
    clean = text.strip(_STRIP)
    if clean in MISSING:
        return None
    try:
        value = Decimal(clean)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    # Same rounding as the SQL path: to 6 decimals, then to whole ns, halves away from zero.
    try:
        micro = value.quantize(_MICRO, rounding=ROUND_HALF_UP)
        ns = int((micro * 1000).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except InvalidOperation:  # more digits than the decimal context holds
        return None
    return ns if -(1 << 63) <= ns < (1 << 63) else None


def quote(text: str | Path) -> str:
    """A SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"


def ident(name: str) -> str:
    """A SQL identifier (column names in these files hold spaces, brackets and %)."""
    return '"' + name.replace('"', '""') + '"'


def clean_sql(col: str) -> str:
    """The field as text without TABs, CRs and surrounding quotes; NULL when missing.

    Costs a trim per cell: the hot paths use `text_sql` / `ns_sql` / `int_sql` instead.
    """
    return f"NULLIF(NULLIF(NULLIF(trim(CAST({col} AS VARCHAR), {_STRIP_SQL}), 'N/A'), ''), 'NA')"


def text_sql(col: str) -> str:
    """A text field as written; NULL for `N/A` and empty."""
    return f"NULLIF(NULLIF({col}, 'N/A'), '')"


def shape_sql(col: str) -> str:
    """A shape/dtype/format list without the literal quotes msprof writes around it."""
    return f"NULLIF(NULLIF(trim({col}, '\"'), 'N/A'), '')"


def _number(col: str, sql_type: str, wide_type: str | None = None) -> str:
    # DuckDB's numeric casts skip surrounding whitespace (the trailing TAB). The fallback (a wider
    # type, and trimming quotes) only runs for the rare cell that still fails and is not `N/A`.
    wide = wide_type or sql_type
    return (
        f"coalesce(TRY_CAST({col} AS {sql_type}),"
        f" CASE WHEN {col} <> 'N/A' THEN TRY_CAST(trim({col}, {_STRIP_SQL}) AS {wide}) END)"
    )


def ns_sql(col: str, scale: int = 1000, small: bool = False) -> str:
    """µs text (or ms with scale=1_000_000) to BIGINT ns, exact for up to 6 decimals.

    `small` is for durations: a 64-bit DECIMAL(18,6) is cheaper than the 128-bit one that absolute
    timestamps (16 integer digits) need; larger values still take the wide path.
    """
    first = "DECIMAL(18,6)" if small else "DECIMAL(38,6)"
    return f"TRY_CAST(round({_number(col, first, 'DECIMAL(38,6)')} * {scale}) AS BIGINT)"


def bytes_sql(col: str, factor: int) -> str:
    """A decimal amount in a unit of `factor` bytes to BIGINT bytes."""
    return f"TRY_CAST(round({_number(col, 'DECIMAL(38,10)')} * {factor}) AS BIGINT)"


def int_sql(col: str) -> str:
    """An integer field; the invalid-id sentinel 4294967295, and a value past BIGINT, become NULL."""
    return f"NULLIF(TRY_CAST({_number(col, 'BIGINT', 'DECIMAL(38,0)')} AS BIGINT), {UINT32_MAX})"


def float_sql(col: str) -> str:
    """A floating-point field (ratios, percentages, bandwidths)."""
    return f"TRY_CAST({col} AS DOUBLE)"


def json_number_sql(col: str) -> str:
    """A field as a JSON value: a number where it parses as a finite one, else null."""
    return f"CASE WHEN isfinite(TRY_CAST({col} AS DOUBLE)) THEN TRY_CAST({col} AS DOUBLE) END"


def unit_factor(header: str) -> int | None:
    """Bytes per unit named in a header like `Total Allocated(MB)`; None when not a byte unit."""
    match = _UNIT.search(header)
    return _BYTE_FACTORS.get(match.group(1).lower()) if match else None


def read_header(path: Path) -> list[str]:
    """The header row of a CSV file (BOM, CRLF and quoting handled)."""
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    if not head.strip():
        raise TraceFormatError(path, "expected a CSV file with a header row, found an empty file")
    if b"\x00" in head[:1024]:
        raise TraceFormatError(path, "expected a CSV file with a header row, found binary data")
    text = head.decode("utf-8-sig", errors="replace")
    first = text.splitlines()[0] if text.splitlines() else ""
    try:
        row = next(csv.reader(io.StringIO(first)))
    except (csv.Error, StopIteration):
        row = []
    return [name.strip(_STRIP) for name in row]


def csv_source(paths: list[Path], header: list[str]) -> tuple[str, list[str]]:
    """A `read_csv` table expression over CSV parts sharing `header`, every column VARCHAR,
    and the (deduplicated) column names."""
    names = column_names(header)
    columns = "{" + ", ".join(f"{quote(name)}: 'VARCHAR'" for name in names) + "}"
    files = "[" + ", ".join(quote(p) for p in paths) + "]"
    source = (
        f"read_csv({files}, header=true, auto_detect=false, delim=',', quote='\"', escape='\"', columns={columns},"
        " null_padding=true, ignore_errors=true, strict_mode=false, parallel=true)"
    )
    return source, names


def column_names(header: list[str]) -> list[str]:
    """The names of a header's columns, made unique (`Name`, `Name_2`) and never empty."""
    names: list[str] = []
    for name in header:
        candidate, n = name or "column", 1
        while candidate in names:
            n += 1
            candidate = f"{name}_{n}"
        names.append(candidate)
    return names


def load_csvs(con: duckdb.DuckDBPyConnection, paths: list[Path], table: str, header: list[str]) -> list[str]:
    """Load CSV parts with the same header (msprof `_slice_N_` files) into `table`; return the columns."""
    source, names = csv_source(paths, header)
    con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM {source}")
    return names


def pick(columns: list[str], *aliases: str) -> str | None:
    """The first of `aliases` present in `columns` (case- and space-insensitive), else None."""
    index = {_norm(c): c for c in columns}
    for alias in aliases:
        if (found := index.get(_norm(alias))) is not None:
            return found
    return None


def pick_prefix(columns: list[str], prefix: str) -> str | None:
    """The first column whose name starts with `prefix` (e.g. `Total Allocated(` for any unit)."""
    for column in columns:
        if _norm(column).startswith(_norm(prefix)):
            return column
    return None


def _norm(name: str) -> str:
    return re.sub(r"\s+", "", name).lower()


def col_or_null(column: str | None, alias: str = "") -> str:
    """A quoted column reference, or NULL when the file lacks the column."""
    return ident(column) if column else "NULL"


@dataclass
class ScientificCount:
    """The scientific-notation values of a column: how many were read exactly, how many refused."""

    column: str
    read: int = 0
    refused: int = 0
    example_read: str | None = None
    example_refused: str | None = None


def exact_positional(text: str, multiplier: int) -> str | None:
    """Scientific-notation text as the exact positional decimal it writes (`1.69512E+15` ->
    `1695120000000000`); None when value * multiplier (the target unit's factor: 1000 for µs -> ns,
    1048576 for MB -> bytes) is no whole number, or the number is not finite or out of bounds."""
    try:
        value = Decimal(text.strip(_STRIP))
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    _, digits, exponent = value.as_tuple()
    if len(digits) > SCIENTIFIC_MAX_DIGITS or abs(int(exponent)) > SCIENTIFIC_MAX_EXPONENT:
        return None
    with localcontext(Context(prec=2 * SCIENTIFIC_MAX_DIGITS, traps=[Inexact, InvalidOperation])):
        scaled = value * multiplier
        if scaled != scaled.to_integral_value():
            return None
    return format(value, "f")


def settle_scientific(con: duckdb.DuckDBPyConnection, table: str, column: str, multiplier: int) -> ScientificCount:
    """Rewrite the scientific-notation fields of a text column in place: exact positional text where the
    value is a whole number of the target unit (see `exact_positional`), else NULL (refused)."""
    count = ScientificCount(column)
    col = ident(column)
    rows = con.execute(
        f"SELECT rowid, {col} FROM {table} WHERE regexp_matches({col}, '{_SCIENTIFIC_SQL}')"
    ).fetchall()
    if not rows:
        return count
    fixes = []
    for rowid, text in rows:
        plain = exact_positional(text, multiplier)
        fixes.append((rowid, plain))
        if plain is None:
            count.refused += 1
            count.example_refused = count.example_refused or text.strip(_STRIP)
        else:
            count.read += 1
            count.example_read = count.example_read or text.strip(_STRIP)
    ids, texts = zip(*fixes, strict=True)
    fixed = pa.table({"rid": pa.array(ids, pa.int64()), "plain": pa.array(texts, pa.string())})
    con.register("scientific_fixes", fixed)
    try:
        con.execute(f"UPDATE {table} SET {col} = f.plain FROM scientific_fixes f WHERE {table}.rowid = f.rid")
    finally:
        con.unregister("scientific_fixes")
    return count
