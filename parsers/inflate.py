"""gzip inflation in bounded chunks, capped relative to the compressed size (no bombs)."""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import TraceFormatError
from .limits import ENV_MAX_INFLATE_RATIO, inflate_cap, limits

GZIP_MAGIC = b"\x1f\x8b"
READ_BLOCK = 1 << 20
# Each decompress call returns at most this many bytes, so memory stays bounded whatever the ratio.
OUT_BLOCK = 8 << 20


class InflateLimitError(TraceFormatError):
    """The stream inflates past the cap: a decompression bomb, or a limit set too low."""


class DamagedGzipError(TraceFormatError):
    """The gzip stream is corrupt or ends early."""


def bomb_message(compressed_bytes: int) -> str:
    """The one-line problem for a stream of `compressed_bytes` that inflates past its cap."""
    current = limits()
    return (
        f"gzip data inflates past {inflate_cap(compressed_bytes):,} bytes, the limit for {compressed_bytes:,}"
        f" compressed bytes ({current.max_inflate_ratio:g}x, at least {current.inflate_floor_bytes:,});"
        f" a decompression bomb? Raise the limit with --max-inflate-ratio or {ENV_MAX_INFLATE_RATIO}"
    )


def inflate_chunks(fh: BinaryIO, path: Path | str, compressed_bytes: int, strict: bool = True) -> Iterator[bytes]:
    """Yield the inflated bytes of the gzip stream in `fh` (concatenated members too), each piece at
    most OUT_BLOCK bytes.

    Past `inflate_cap(compressed_bytes)` raises InflateLimitError. A corrupt or cut stream raises
    DamagedGzipError when `strict`; otherwise the iteration ends after the good bytes and the
    caller learns of the damage from `InflateState` (see `inflate_with_state`).
    """
    state = InflateState()
    yield from inflate_with_state(fh, path, compressed_bytes, state, strict)


class InflateState:
    """What `inflate_with_state` found wrong, when not strict: None, or a one-line problem."""

    def __init__(self) -> None:
        self.damage: str | None = None
        self.inflated = 0


def inflate_with_state(
    fh: BinaryIO, path: Path | str, compressed_bytes: int, state: InflateState, strict: bool = True
) -> Iterator[bytes]:
    """`inflate_chunks`, recording damage in `state` instead of raising when not `strict`."""
    cap = inflate_cap(compressed_bytes)
    inflater = zlib.decompressobj(wbits=31)
    pending = b""
    started = False
    while True:
        if not pending:
            pending = fh.read(READ_BLOCK)
            if not pending:
                break
        try:
            out = inflater.decompress(pending, OUT_BLOCK)
        except zlib.error as exc:
            problem = f"gzip stream is damaged ({exc})"
            if strict:
                raise DamagedGzipError(path, problem) from None
            state.damage = problem
            return
        started = True
        pending = inflater.unconsumed_tail
        if out:
            state.inflated += len(out)
            if state.inflated > cap:
                raise InflateLimitError(path, bomb_message(compressed_bytes))
            yield out
        if inflater.eof:
            # What follows a member: another member (legal), zero padding, or the end.
            rest = inflater.unused_data or fh.read(READ_BLOCK)
            while rest and not rest.strip(b"\x00"):
                rest = fh.read(READ_BLOCK)
            if not rest:
                return
            inflater = zlib.decompressobj(wbits=31)
            pending = rest
    if not started or not inflater.eof:
        problem = "gzip stream ends early (file truncated)"
        if strict:
            raise DamagedGzipError(path, problem)
        state.damage = problem


def gunzip_to(source: Path, target: Path) -> int:
    """Inflate `source` into a new file `target` (never through an existing path or link); return
    the bytes written. Raises InflateLimitError or DamagedGzipError."""
    size = source.stat().st_size
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(target, flags, 0o600)
    written = 0
    try:
        with open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
            for piece in inflate_chunks(src, source, size):
                dst.write(piece)
                written += len(piece)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return written


def inflate_head(raw: bytes, size: int) -> bytes:
    """The first `size` inflated bytes of the gzip bytes `raw` (for sniffing), or b'' when damaged."""
    try:
        return zlib.decompressobj(wbits=31).decompress(raw, size)
    except zlib.error:
        return b""
