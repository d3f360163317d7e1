"""parsers.prefetch: the same batches, errors where they happened, a thread that stops with its consumer."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.prefetch import prefetch

SCHEMA = pa.schema([("x", pa.int64())])


def _reader(sizes: list[int], fail_at: int | None = None) -> pa.RecordBatchReader:
    def batches() -> Iterator[pa.RecordBatch]:
        start = 0
        for index, size in enumerate(sizes):
            if index == fail_at:
                raise ValueError(f"source failed at batch {index}")
            yield pa.record_batch([pa.array(range(start, start + size), pa.int64())], schema=SCHEMA)
            start += size

    return pa.RecordBatchReader.from_batches(SCHEMA, batches())


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 50), max_size=12), st.integers(1, 4))
def test_prefetch_gives_the_same_batches(sizes: list[int], depth: int) -> None:
    """Every batch, in order, whatever the read-ahead depth."""
    got = [batch.column(0).to_pylist() for batch in prefetch(_reader(sizes), depth)]
    assert got == [batch.column(0).to_pylist() for batch in _reader(sizes)]


def test_prefetch_raises_the_source_error_to_the_consumer() -> None:
    """A failing source fails the consumer, after the batches read before the failure."""
    seen = []
    with pytest.raises(ValueError, match="source failed at batch 2"):
        for batch in prefetch(_reader([3, 3, 3, 3], fail_at=2)):
            seen.append(batch.num_rows)
    assert seen == [3, 3]


def test_prefetch_thread_stops_when_the_consumer_stops() -> None:
    """A consumer that takes one batch and drops the reader leaves no thread behind."""
    reader = prefetch(_reader([1] * 100), depth=2)
    reader.read_next_batch()
    reader.close()
    del reader
    gc.collect()
    assert not [t for t in threading.enumerate() if t.name == "arrow-prefetch"]
