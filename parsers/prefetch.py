"""Items of an iterator produced ahead, on a thread of their own.

The slices of a Kineto trace are written as a stream of row groups: each is made by DuckDB
queries and Arrow regrouping, then encoded by the Parquet writer. Made on another thread (DuckDB,
Arrow and the Parquet writer release the GIL while they work), the next row groups are ready when
the writer asks for them, and the two take both cores instead of turns.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()
_PUT_WAIT_S = 0.1
THREAD_NAME = "read-ahead"


def read_ahead(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """The same items as `items`, taken from it up to `depth` items ahead on a thread.

    An error of `items` is raised to the consumer at the item where it happened. A consumer that
    stops early (or fails) is noticed when the returned iterator is closed or collected: the
    thread stops.
    """
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=_PUT_WAIT_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
            offer(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            offer(exc)

    worker = threading.Thread(target=produce, name=THREAD_NAME, daemon=True)

    def consume() -> Iterator[T]:
        worker.start()
        try:
            while (item := ready.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            stop.set()
            worker.join()

    return consume()
