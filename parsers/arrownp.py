"""Arrow columns and numpy arrays, one into the other, without pyarrow's pandas shim.

pyarrow's `to_numpy` and `pa.array(ndarray, mask=...)` go through that shim, whose first use imports
pandas: about 0.3 s added to every ingest, for conversions that are views of a data buffer (or a
packing of bits, for booleans and validity).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy._core import multiarray as _multiarray

# The pool of the Arrow buffers the parsers make (filters, concatenations). pyarrow's default,
# mimalloc, hands freed memory back to the system and faults it in again on the next batch: the
# regrouping of the slices of a 257 MB trace took 0.85-1.2 s with it, 0.17-0.25 s with malloc's pool.
POOL = pa.system_memory_pool()


@contextmanager
def small_pages() -> Iterator[None]:
    """numpy arrays made meanwhile are not advised to use transparent huge pages.

    numpy asks for huge pages on every array of 4 MiB or more; where THP is enabled for advised
    memory (`madvise`, a common default), each first touch of a fresh array then faults in and
    clears a whole 2 MiB page. The parsers' arrays live for a second and are often not written whole:
    linking the slices of a 1 GB trace took 2.89-2.93 s instead of 3.43-3.58 s without the advice
    (1.2 instead of 1.8 s of system time; no compaction stalls were counted, so the cost is in the
    faults themselves).
    """
    advise = getattr(_multiarray, "_set_madvise_hugepage", None)  # numpy's switch; private, so optional
    before = advise(False) if advise else None
    try:
        yield
    finally:
        if advise:
            advise(before)


def numpy_column(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The values of a null-free column of fixed-width numbers or booleans, as a numpy array."""
    if isinstance(column, pa.ChunkedArray):
        if column.num_chunks == 1:
            column = column.chunk(0)
        elif column.num_chunks > 1:
            column = column.combine_chunks(memory_pool=POOL)
        elif _fixed_width(column.type):  # combine_chunks would import pandas to make an empty array
            column = pa.Array.from_buffers(column.type, 0, [None, None])
        else:
            raise TypeError(f"numpy_column takes numbers or booleans, not {column.type}")
    array = column
    if array.null_count:
        raise ValueError(f"column has {array.null_count} nulls; numpy_column takes null-free columns only")
    data = array.buffers()[1]
    if pa.types.is_boolean(array.type):
        bits = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, dtype=np.uint8)
        return np.unpackbits(bits, bitorder="little")[array.offset : array.offset + len(array)].astype(bool)
    if not (pa.types.is_integer(array.type) or pa.types.is_floating(array.type)):
        raise TypeError(f"numpy_column takes numbers or booleans, not {array.type}")
    dtype = np.dtype(array.type.to_pandas_dtype())
    if data is None:
        return np.zeros(0, dtype=dtype)
    return np.frombuffer(data, dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize)


def nullable_numpy(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """The values of a column of fixed-width numbers or booleans that may hold nulls, and where it
    holds values (False at nulls, whose value slots are 0 or False)."""
    if not _fixed_width(column.type):
        raise TypeError(f"nullable_numpy takes numbers or booleans, not {column.type}")
    boolean = pa.types.is_boolean(column.type)
    dtype = np.dtype(bool) if boolean else np.dtype(column.type.to_pandas_dtype())
    values = np.zeros(len(column), dtype=dtype)
    valid = np.ones(len(column), dtype=bool)
    start = 0
    for chunk in _chunks(column):
        rows = len(chunk)
        validity, data = chunk.buffers()[:2]
        if chunk.null_count == rows or data is None:
            valid[start : start + rows] = False
        else:
            if boolean:
                part = _bits(data, chunk.offset, rows)
            else:
                part = np.frombuffer(data, dtype=dtype, count=rows, offset=chunk.offset * dtype.itemsize)
            if chunk.null_count:
                ok = _bits(validity, chunk.offset, rows)
                valid[start : start + rows] = ok
                values[start : start + rows] = np.where(ok, part, np.zeros(1, dtype=dtype))
            else:
                values[start : start + rows] = part
        start += rows
    return values, valid


def null_where(column: pa.ChunkedArray, drop: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray:
    """`column` with nulls where the boolean `drop` is true (Arrow kernels, outside the GIL); the
    column itself where it is true nowhere."""
    if not pc.any(drop).as_py():
        return column
    return pc.if_else(drop, pa.nulls(1, column.type)[0], column)


def _bits(buffer: pa.Buffer, offset: int, rows: int) -> np.ndarray:
    """Arrow's bitmap (validity or boolean values) as a numpy bool array."""
    return np.unpackbits(np.frombuffer(buffer, dtype=np.uint8), bitorder="little")[offset : offset + rows].astype(bool)


def decimal_units(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The values of a null-free decimal128 column in units of its last decimal place (a DECIMAL(38,3)
    of µs gives ns), exactly, as int64; ValueError where a value does not fit.

    DuckDB's own `CAST(x * 1000 AS BIGINT)` does the same in 128-bit arithmetic: 0.35-0.45 s for the
    6 M times of a 1 GB trace, where this is one copy of the low words and a check of the high ones.
    """
    if column.null_count:
        raise ValueError(f"column has {column.null_count} nulls; decimal_units takes null-free columns only")
    return _decimal_units(column)[0]


def decimal_units_array(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """`decimal_units` of a decimal128 column that may hold nulls, as an int64 Arrow array with the
    same nulls."""
    values, valid = _decimal_units(column)
    return arrow_array(values, None if valid.all() else ~valid)


def _decimal_units(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    chunks = _chunks(column)
    if not pa.types.is_decimal128(column.type):
        raise TypeError(f"decimal_units takes decimal128 columns, not {column.type}")
    out = np.zeros(len(column), dtype=np.int64)
    valid = np.ones(len(column), dtype=bool)
    start = 0
    for chunk in chunks:
        rows = len(chunk)
        if not rows:
            continue
        words = np.frombuffer(chunk.buffers()[1], dtype=np.int64, count=2 * rows, offset=16 * chunk.offset)
        low, high = words[0::2], words[1::2]
        if chunk.null_count:
            ok = _bits(chunk.buffers()[0], chunk.offset, rows)
            low, high = low[ok], high[ok]
            valid[start : start + rows] = ok
            out[start : start + rows][ok] = low
        else:
            out[start : start + rows] = low
        if not np.array_equal(high, low >> 63):  # the high word of a 128-bit integer that fits in 64 bits
            raise ValueError("a decimal value is beyond the int64 range")
        start += rows
    return out, valid


# Below 2**50 ns a double holds every integer with room to spare; the µs times of a profile are far
# below (2**50 ns is 13 days).
_WHOLE_NS_LIMIT = 2.0**50
_WINDOW_ROWS = 1 << 17


def whole_ns_array(column: pa.Array | pa.ChunkedArray, per_unit: int = 1000) -> pa.ChunkedArray:
    """Times read as doubles in units of `per_unit` ns (µs: 1000) as int64 ns, with the same nulls
    and chunks.

    Exact for times written with at most 3 decimals: the text's parse and the product by 1000 each
    round once to the nearest double, so the product is within |n| * 2**-52 of the integer n, which
    rounding to the nearest returns. A product farther from an integer than twice that is a time
    finer than a ns (a 4th decimal), and raises ValueError, as do NaN, infinities and |n| >= 2**50.
    """
    # In windows of rows: the temporaries stay small (a whole column's would add 100-200 MB to the
    # peak RSS of a 1 M-row table read beside a timeline).
    windows = [column.slice(start, _WINDOW_ROWS) for start in range(0, len(column), _WINDOW_ROWS)]
    parts = [_whole_ns(window, _double(per_unit)) for window in windows]
    return pa.chunked_array([c for part in parts for c in _chunks(part)], type=pa.int64())


def _whole_ns(column: pa.Array | pa.ChunkedArray, per_unit: pa.Scalar) -> pa.Array | pa.ChunkedArray:
    product = pc.multiply(column, per_unit)
    whole = pc.round(product)  # to the nearest, ties to even
    off = pc.abs(pc.subtract(product, whole))
    size = pc.abs(whole)
    fits = pc.and_(pc.less_equal(off, pc.multiply(size, _double(2.0**-51))), pc.less(size, _double(_WHOLE_NS_LIMIT)))
    if pc.all(fits).as_py() is False:  # NaN and infinities compare False; nulls are skipped
        raise ValueError("a time is not a whole number of ns within 2**50")
    return pc.cast(whole, pa.int64())


def _chunks(column: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return column.chunks if isinstance(column, pa.ChunkedArray) else [column]


def _double(value: float) -> pa.Scalar:
    # pa.scalar() would import pandas (0.3 s)
    return arrow_array(np.array([value], dtype=np.float64))[0]


def _fixed_width(arrow_type: pa.DataType) -> bool:
    return pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or pa.types.is_boolean(arrow_type)


_ARROW_TYPES = {
    np.dtype(np.int64): pa.int64(),
    np.dtype(np.int32): pa.int32(),
    np.dtype(np.uint64): pa.uint64(),
    np.dtype(np.float64): pa.float64(),
    np.dtype(np.bool_): pa.bool_(),
}


def arrow_array(values: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """A numpy array as an Arrow array (nulls where `mask` is true), sharing its memory where it can.

    `pa.array(values, mask=...)` would do the same, after importing pandas.
    """
    arrow_type = _ARROW_TYPES.get(values.dtype)
    if arrow_type is None or values.ndim != 1:
        raise TypeError(f"arrow_array takes 1-D arrays of {sorted(map(str, _ARROW_TYPES))}, not {values.dtype}")
    nulls = int(mask.sum()) if mask is not None else 0
    validity = pa.py_buffer(np.packbits(~mask, bitorder="little")) if mask is not None and nulls else None
    if arrow_type == pa.bool_():
        data = pa.py_buffer(np.packbits(values, bitorder="little"))
    else:
        data = pa.py_buffer(np.ascontiguousarray(values))
    return pa.Array.from_buffers(arrow_type, len(values), [validity, data], null_count=nulls)


def decimal_array(unscaled: np.ndarray, precision: int, scale: int) -> pa.Array:
    """int64 unscaled values (value * 10**scale) as an Arrow decimal128 array, exactly."""
    values = np.ascontiguousarray(unscaled, dtype=np.int64)
    words = np.empty((len(values), 2), dtype=np.int64)  # little-endian 128-bit two's complement
    words[:, 0] = values
    words[:, 1] = values >> 63
    return pa.Array.from_buffers(pa.decimal128(precision, scale), len(values), [None, pa.py_buffer(words)])


def python_array(values: Sequence[object], arrow_type: pa.DataType) -> pa.Array:
    """Python values (None for null) as an int64, float64, string or large_string Arrow array.

    `pa.array(values)` would do the same, after importing pandas (about 1 s on a cold start).
    """
    missing = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
    mask = missing if missing.any() else None
    if arrow_type in (pa.string(), pa.large_string()):
        encoded = [b"" if v is None else str(v).encode() for v in values]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=offsets[1:])
        large = arrow_type == pa.large_string()
        if not large and offsets[-1] >= 1 << 31:
            raise ValueError("more than 2 GiB of text in one string array; use large_string")
        validity = pa.py_buffer(np.packbits(~missing, bitorder="little")) if mask is not None else None
        data = pa.py_buffer(b"".join(encoded))
        buffers = [validity, pa.py_buffer(offsets if large else offsets.astype(np.int32)), data]
        return pa.Array.from_buffers(arrow_type, len(encoded), buffers, null_count=int(missing.sum()))
    dtype = {pa.int64(): np.int64, pa.float64(): np.float64}.get(arrow_type)
    if dtype is None:
        raise TypeError(f"python_array makes int64, float64 and string arrays, not {arrow_type}")
    filled = np.fromiter((0 if v is None else v for v in values), dtype=dtype, count=len(values))
    return arrow_array(filled, mask=mask)


def repeated_string(value: str, count: int) -> pa.Array:
    """A string array holding `value` `count` times (`pa.repeat` imports pandas to convert the value)."""
    encoded = value.encode()
    offsets = np.arange(count + 1, dtype=np.int64) * len(encoded)
    if offsets[-1] >= 1 << 31:
        raise ValueError("more than 2 GiB of text in one string array")
    buffers = [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(encoded * count)]
    return pa.Array.from_buffers(pa.string(), count, buffers)
