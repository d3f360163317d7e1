"""Batches of an Arrow stream produced ahead, on a thread of their own.

DuckDB scans a Python record-batch stream on one thread and asks for the next batch only after it
has taken the previous one in; when the batches are themselves query results, producing them and
encoding them then take turns. Produced on another thread (DuckDB and Arrow release the GIL while
they work), the next batches are ready when asked for.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import pyarrow as pa

_DONE = object()
_PUT_WAIT_S = 0.1


def prefetch(reader: pa.RecordBatchReader, depth: int = 2) -> pa.RecordBatchReader:
    """A reader of the same batches, read from `reader` up to `depth` batches ahead on a thread.

    An error of `reader` is raised to the consumer at the batch where it happened. A consumer that
    stops early (or fails) is noticed when the returned reader is collected: the thread stops.
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
            for batch in reader:
                if not offer(batch):
                    return
            offer(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            offer(exc)

    worker = threading.Thread(target=produce, name="arrow-prefetch", daemon=True)

    def batches() -> Iterator[pa.RecordBatch]:
        worker.start()
        try:
            while (item := ready.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            stop.set()
            worker.join()

    return pa.RecordBatchReader.from_batches(reader.schema, batches())
