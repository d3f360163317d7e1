"""Zipping row-aligned Arrow sources that batch their rows differently (parsers.rowzip)."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from traceview.parsers.rowzip import zip_rows


def _batched(table: pa.Table, cuts: list[int]) -> pa.RecordBatchReader:
    """`table` as a reader whose batches end at `cuts` (sorted row positions)."""
    edges = [0, *sorted({c for c in cuts if 0 < c < table.num_rows}), table.num_rows]
    batches = [b for a, z in zip(edges, edges[1:], strict=False) for b in table.slice(a, z - a).to_batches()]
    return pa.RecordBatchReader.from_batches(table.schema, batches)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(min_value=0, max_value=300),
    cuts_a=st.lists(st.integers(min_value=0, max_value=300), max_size=8),
    cuts_b=st.lists(st.integers(min_value=0, max_value=300), max_size=8),
)
def test_zip_equals_the_columns_side_by_side(rows: int, cuts_a: list[int], cuts_b: list[int]) -> None:
    keys = list(range(0, 3 * rows, 3))
    left = pa.table({"id": keys, "name": [f"n{k}" for k in keys]})
    middle = pa.table({"id": keys, "value": [k * 0.5 for k in keys]})
    right = pa.table({"id": keys, "flag": [k % 2 == 0 for k in keys]})
    zipped = zip_rows([_batched(left, cuts_a), _batched(middle, cuts_b), right], "id").read_all()
    assert zipped.column_names == ["id", "name", "value", "flag"]
    expected = {**left.to_pydict(), "value": middle["value"].to_pylist(), "flag": right["flag"].to_pylist()}
    assert zipped.to_pydict() == expected


def test_a_source_out_of_step_is_an_error() -> None:
    left = pa.table({"id": [1, 2, 3], "a": ["x", "y", "z"]})
    shifted = pa.table({"id": [1, 3, 4], "b": [1, 2, 3]})
    with pytest.raises(ValueError, match="not aligned on 'id'"):
        zip_rows([left, shifted], "id").read_all()


def test_sources_of_different_lengths_are_an_error() -> None:
    left = pa.table({"id": [1, 2, 3], "a": ["x", "y", "z"]})
    with pytest.raises(ValueError, match="ended before"):
        zip_rows([left, pa.table({"id": [1, 2], "b": [1, 2]})], "id").read_all()
    with pytest.raises(ValueError, match="more rows than the first"):
        zip_rows([left, pa.table({"id": [1, 2, 3, 4], "b": [1, 2, 3, 4]})], "id").read_all()
