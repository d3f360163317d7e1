"""parsers.prefetch: the same items, errors where they happened, a thread that stops with its consumer."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from traceview.parsers.prefetch import THREAD_NAME, read_ahead


def _items(sizes: list[int], fail_at: int | None = None) -> Iterator[list[int]]:
    start = 0
    for index, size in enumerate(sizes):
        if index == fail_at:
            raise ValueError(f"source failed at item {index}")
        yield list(range(start, start + size))
        start += size


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 50), max_size=12), st.integers(1, 4))
def test_read_ahead_gives_the_same_items(sizes: list[int], depth: int) -> None:
    """Every item, in order, whatever the read-ahead depth."""
    assert list(read_ahead(_items(sizes), depth)) == list(_items(sizes))


def test_read_ahead_raises_the_source_error_to_the_consumer() -> None:
    """A failing source fails the consumer, after the items read before the failure."""
    seen = []
    with pytest.raises(ValueError, match="source failed at item 2"):
        for item in read_ahead(_items([3, 3, 3, 3], fail_at=2)):
            seen.append(len(item))
    assert seen == [3, 3]


def test_read_ahead_thread_stops_when_the_consumer_stops() -> None:
    """A consumer that takes one item and drops the iterator leaves no thread behind."""
    items = read_ahead(_items([1] * 100), depth=2)
    next(items)
    items.close()
    del items
    gc.collect()
    assert not [t for t in threading.enumerate() if t.name == THREAD_NAME]
