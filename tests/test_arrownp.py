"""parsers.arrownp: Arrow columns as numpy arrays, equal to their Python values, without pandas."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pytest
from fresh_python import fresh_python
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from traceview.parsers.arrownp import (
    arrow_array,
    decimal_array,
    decimal_units,
    decimal_units_array,
    null_where,
    nullable_numpy,
    numpy_column,
    python_array,
    repeated_string,
    small_pages,
    whole_ns_array,
)

TYPES = {
    pa.int64(): st.integers(-(2**63), 2**63 - 1),
    pa.uint64(): st.integers(0, 2**64 - 1),
    pa.int32(): st.integers(-(2**31), 2**31 - 1),
    pa.float64(): st.floats(allow_nan=False),
    pa.bool_(): st.booleans(),
}


@st.composite
def columns(draw: st.DrawFn) -> tuple[pa.ChunkedArray | pa.Array, list]:
    """A column of one type, in chunks, possibly sliced (an offset into its buffers)."""
    arrow_type = draw(st.sampled_from(list(TYPES)))
    chunks = draw(st.lists(st.lists(TYPES[arrow_type], max_size=40), min_size=1, max_size=4))
    column = pa.chunked_array([pa.array(chunk, arrow_type) for chunk in chunks], arrow_type)
    values = [v for chunk in chunks for v in chunk]
    start = draw(st.integers(0, len(values)))
    length = draw(st.integers(0, len(values) - start))
    if draw(st.booleans()):
        return column.slice(start, length), values[start : start + length]
    return column.combine_chunks().slice(start, length), values[start : start + length]


@settings(max_examples=200, deadline=None)
@given(columns())
def test_numpy_column_has_the_column_values(case: tuple[pa.ChunkedArray | pa.Array, list]) -> None:
    """Chunked or not, sliced or not, every type: the same values in the same order."""
    column, values = case
    got = numpy_column(column)
    assert got.tolist() == values
    assert len(got) == len(values)


def test_numpy_column_refuses_nulls_and_strings() -> None:
    """Nulls have no numpy value here, and strings are not fixed-width: both are errors."""
    with pytest.raises(ValueError, match="1 nulls"):
        numpy_column(pa.array([1, None, 3]))
    with pytest.raises(TypeError, match="not string"):
        numpy_column(pa.array(["a"]))


def test_numpy_column_does_not_import_pandas() -> None:
    """The point of the module: pandas stays out of an ingest."""
    # The columns come from DuckDB, as in an ingest (pyarrow's own conversion of Python lists
    # would import pandas itself).
    code = (
        "import sys, duckdb; from traceview.parsers.arrownp import numpy_column;"
        "t = duckdb.sql('SELECT range::BIGINT AS a, range % 2 = 0 AS b FROM range(5)').to_arrow_table();"
        "numpy_column(t.column('a')); numpy_column(t.column('b')); print('pandas' in sys.modules)"
    )
    assert fresh_python(code) == "False"


def test_numpy_column_dtype() -> None:
    """The numpy dtype follows the Arrow type."""
    assert numpy_column(pa.array([1], pa.uint64())).dtype == np.uint64
    assert numpy_column(pa.array([True])).dtype == np.bool_


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([np.int64, np.int32, np.uint64, np.float64, np.bool_]),
    st.lists(st.tuples(st.integers(0, 2**31 - 1), st.booleans()), max_size=60),
    st.integers(1, 3),
)
def test_arrow_array_has_the_values_and_nulls(dtype: type, cells: list[tuple[int, bool]], stride: int) -> None:
    """Values (from strided arrays too) and nulls where the mask is set, as pa.array would give them."""
    values = np.array([v for v, _ in cells], dtype=dtype)[::stride]
    mask = np.array([m for _, m in cells], dtype=bool)[::stride]
    got = arrow_array(values, mask=mask)
    got.validate(full=True)
    want = [None if m else v for v, m in zip(values.tolist(), mask.tolist(), strict=True)]
    assert got.to_pylist() == want
    assert got.null_count == int(mask.sum())
    assert arrow_array(values).to_pylist() == values.tolist()


def test_arrow_array_refuses_other_dtypes() -> None:
    """Strings and 2-D arrays have no buffer view here: an error, not a wrong array."""
    with pytest.raises(TypeError, match="arrow_array takes"):
        arrow_array(np.array(["a"]))
    with pytest.raises(TypeError, match="arrow_array takes"):
        arrow_array(np.zeros((2, 2), dtype=np.int64))


PYTHON_VALUES = {
    pa.int64(): st.integers(-(2**63), 2**63 - 1),
    pa.float64(): st.floats(allow_nan=False),
    pa.string(): st.text(),
    pa.large_string(): st.text(),
}


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_python_array_equals_pyarrows_conversion(data: st.DataObject) -> None:
    """Python values with None: the same array as pa.array makes (through its pandas shim)."""
    arrow_type = data.draw(st.sampled_from(list(PYTHON_VALUES)))
    values = data.draw(st.lists(st.none() | PYTHON_VALUES[arrow_type], max_size=50))
    got = python_array(values, arrow_type)
    got.validate(full=True)
    assert got.equals(pa.array(values, arrow_type))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=50), st.integers(0, 6))
def test_decimal_array_is_exact(unscaled: list[int], scale: int) -> None:
    got = decimal_array(np.array(unscaled, dtype=np.int64), 38, scale)
    got.validate(full=True)
    assert got.to_pylist() == [Decimal(v).scaleb(-scale) for v in unscaled]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-(2**63), 2**63 - 1), max_size=60),
    st.lists(st.integers(0, 60), max_size=4),
    st.integers(0, 5),
)
def test_decimal_units_are_the_unscaled_values(unscaled: list[int], cuts: list[int], skip: int) -> None:
    """Across chunks, and in chunks that are slices of a larger array (an offset into the buffer)."""
    edges = [0, *sorted(c for c in cuts if c <= len(unscaled)), len(unscaled)]
    chunks = [
        decimal_array(np.array([0] * skip + unscaled[a:z], dtype=np.int64), 38, 3).slice(skip)
        for a, z in zip(edges, edges[1:], strict=False)
    ]
    column = pa.chunked_array(chunks, type=pa.decimal128(38, 3))
    assert decimal_units(column).tolist() == unscaled


@pytest.mark.parametrize("text", ["9223372036854775.808", "-9223372036854775.809", "1e30"])
def test_decimal_units_refuse_values_beyond_int64(text: str) -> None:
    column = duckdb.sql(f"SELECT CAST('{text}' AS DECIMAL(38,3)) AS d").to_arrow_table().column("d")
    with pytest.raises(ValueError, match="beyond the int64 range"):
        decimal_units(column)


def test_python_array_refuses_other_types() -> None:
    with pytest.raises(TypeError, match="python_array makes"):
        python_array([True], pa.bool_())


@settings(max_examples=40, deadline=None)
@given(value=st.text(max_size=20), count=st.integers(min_value=0, max_value=300))
def test_repeated_string_equals_a_list_of_the_value(value: str, count: int) -> None:
    array = repeated_string(value, count)
    array.validate(full=True)
    assert array.type == pa.string() and array.to_pylist() == [value] * count


def test_sqlite_and_begin_end_ingests_do_not_import_pandas(tmp_path) -> None:
    """Python values from SQLite rows and B/E pairs become Arrow without pyarrow's pandas shim."""
    db = tmp_path / "t.db"
    trace = tmp_path / "be.json"
    trace.write_text(
        '{"traceEvents": [{"ph": "B", "name": "a", "pid": 1, "tid": 1, "ts": 1.5},'
        ' {"ph": "E", "pid": 1, "tid": 1, "ts": 4.25}]}'
    )
    code = (
        "import sys, sqlite3; from pathlib import Path; import pyarrow as pa;"
        "from traceview.parsers.ascend.sqlite_reader import SqliteSource;"
        "from traceview.parsers.ascend.staging import Staging;"
        f"con = sqlite3.connect({str(db)!r}); con.execute('CREATE TABLE T (a INTEGER, b REAL, c TEXT)');"
        "con.execute(\"INSERT INTO T VALUES (1, 2.5, 'x'), (NULL, NULL, NULL)\"); con.commit();"
        f"st = Staging(Path({str(tmp_path)!r}), 1);"
        "SqliteSource(con).copy(st, 'T', 't', {'a': 'int', 'b': 'float', 'c': 'text'});"
        "rows = st.con.sql('SELECT * FROM t').fetchall();"
        "from traceview.store import ingest;"
        f"r = ingest([Path({str(trace)!r})], Path({str(tmp_path / 's')!r}));"
        "print(rows, r.warnings, 'pandas' in sys.modules)"
    )
    assert fresh_python(code) == "[(1, 2.5, 'x'), (None, None, None)] [] False"


def test_small_pages_turns_numpys_huge_page_advice_off_and_back() -> None:
    from numpy._core import multiarray

    initial = multiarray._set_madvise_hugepage(True)  # returns the setting it replaces
    try:
        with small_pages():
            inside = multiarray._set_madvise_hugepage(False)
        after = multiarray._set_madvise_hugepage(True)
    finally:
        multiarray._set_madvise_hugepage(initial)
    assert inside is False and after is True


@st.composite
def nullable_columns(draw: st.DrawFn) -> tuple[pa.ChunkedArray, list]:
    """A chunked column of one type with nulls, its chunks possibly sliced."""
    arrow_type = draw(st.sampled_from(list(TYPES)))
    chunks, values = [], []
    for _ in range(draw(st.integers(1, 4))):
        chunk = draw(st.lists(st.one_of(st.none(), TYPES[arrow_type]), max_size=40))
        skip = draw(st.integers(0, len(chunk)))
        chunks.append(pa.array(chunk, arrow_type).slice(skip))
        values += chunk[skip:]
    return pa.chunked_array(chunks, arrow_type), values


@settings(max_examples=200, deadline=None)
@given(nullable_columns())
def test_nullable_numpy_has_the_values_and_where_they_are(case: tuple[pa.ChunkedArray, list]) -> None:
    column, values = case
    got, valid = nullable_numpy(column)
    assert valid.tolist() == [v is not None for v in values]
    assert got[valid].tolist() == [v for v in values if v is not None]
    assert not got[~valid].any(), "null slots hold 0 / False"


@settings(max_examples=200, deadline=None)
@given(nullable_columns())
def test_null_where_adds_nulls_and_keeps_the_rest(case: tuple[pa.ChunkedArray, list]) -> None:
    column, values = case
    assume(column.type != pa.bool_())  # null_where takes numbers
    got = null_where(column, pc.greater(column, pa.scalar(0, column.type)))
    assert got.to_pylist() == [None if v is None or v > 0 else v for v in values]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), max_size=30), st.integers(0, 5))
def test_decimal_units_array_keeps_the_nulls(unscaled: list[int | None], skip: int) -> None:
    texts = [None if u is None else Decimal(u).scaleb(-3) for u in unscaled]
    decimal = pa.decimal128(38, 3)
    column = pa.chunked_array([pa.array(texts[:skip], decimal), pa.array(texts[skip:], decimal)])
    assert decimal_units_array(column).to_pylist() == unscaled


def _read_as_doubles(texts: list[str]) -> pa.ChunkedArray:
    """Cells as the kernel CSV reader reads a µs column: pyarrow's CSV parser, float64, N/A null."""
    data = ("t\n" + "\n".join(texts) + "\n").encode()
    options = pa_csv.ConvertOptions(column_types={"t": pa.float64()}, null_values=["N/A"])
    return pa_csv.read_csv(pa.py_buffer(data), convert_options=options).column("t")


def _us_text(ns: int, decimals: int) -> str:
    """ns as µs text with `decimals` decimals (0 to 3; the digits dropped must be zeros)."""
    whole, part = divmod(abs(ns), 1000)
    text = f"{'-' if ns < 0 else ''}{whole}"
    return f"{text}.{part:03d}"[: len(text) + 1 + decimals] if decimals else text


def _to_decimals(ns: int, decimals: int) -> int:
    """ns with the digits below `decimals` µs decimals zeroed (the time a shorter text holds)."""
    sign, size = (-1 if ns < 0 else 1), abs(ns)
    return sign * (size - size % 10 ** (3 - decimals))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.tuples(st.integers(-(2**50) + 1, 2**50 - 1), st.integers(0, 3))),
        min_size=1,
        max_size=40,
    )
)
def test_whole_ns_of_doubles_read_from_text_of_up_to_3_decimals_are_exact(cells: list[tuple[int, int] | None]) -> None:
    values = [None if cell is None else _to_decimals(*cell) for cell in cells]
    texts = ["N/A" if c is None else _us_text(v, c[1]) for c, v in zip(cells, values, strict=True)]
    got = whole_ns_array(_read_as_doubles(texts))
    assert got.type == pa.int64()
    assert got.to_pylist() == values


@settings(max_examples=200, deadline=None)
@given(st.integers(-(2**40), 2**40), st.integers(1, 999))
def test_whole_ns_refuse_times_finer_than_a_ns(ns: int, thousandths: int) -> None:
    text = f"{_us_text(ns, 3)}{thousandths:03d}"  # 6 decimals, the last three not all zero
    with pytest.raises(ValueError, match="not a whole number of ns"):
        whole_ns_array(_read_as_doubles([text]))


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1125899906842.624", "496.8508"])
def test_whole_ns_refuse_nan_infinities_and_times_from_2_to_the_50_ns(text: str) -> None:
    with pytest.raises(ValueError, match="not a whole number of ns"):
        whole_ns_array(_read_as_doubles(["1.000", text]))
