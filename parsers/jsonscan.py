"""Byte-level work on Chrome/Kineto JSON before DuckDB reads it.

`extract_events` reads a `.json` or `.json.gz` file once: it decompresses when the magic bytes say
gzip, and writes the `traceEvents` array alone to scratch files, cut at event boundaries into one
piece per core where it can (DuckDB reads each bare array on one thread, the pieces in parallel).
The top-level keys around the array are parsed with `json`.
`recover_events` is the slow, tolerant path for damaged arrays: it walks the array event by
event, repairs what it can, and writes the good events to a new array file.
"""

from __future__ import annotations

import json
import mmap
import os
import re
from array import array
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .errors import TraceFormatError
from .inflate import InflateState, inflate_with_state

CHUNK = 8 << 20
GZIP_MAGIC = b"\x1f\x8b"
# The top-level keys before traceEvents are read whole (Kineto's are a few kB): past this many
# bytes without the array the file is refused. Raise it by setting jsonscan.HEADER_LIMIT.
HEADER_LIMIT = 64 << 20
# The keys after traceEvents are small (traceName, INFO logs); look at growing tails of the file.
TAIL_WINDOWS = (1 << 20, 16 << 20, 128 << 20)

# A JSON string token or one structural bracket; anything else is skipped by finditer.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_CONTROL = re.compile(rb"[\x00-\x1f]")
_TRAILER_END = re.compile(rb"[}\[]\s*\]")
# An unescaped quote inside a value: the value runs to the quote that is followed by a
# separator and a known key, or by the end of the object.
_KNOWN_KEYS = rb"ph|cat|name|pid|tid|ts|dur|args|id|bp|s|tts|cname"
_VALUE_WITH_QUOTES = re.compile(
    rb'("(?:name|cat)"\s*:\s*")(.*?)(?="\s*(?:,\s*"(?:' + _KNOWN_KEYS + rb')"\s*:|\}))', re.DOTALL
)
# In the tolerant path a string may not span lines: valid JSON never has a raw newline in a
# string, and an unescaped quote then upsets the string/structure split for one line only.
_LINE_TOKEN = re.compile(rb'"(?:[^"\\\n]|\\.)*"|[\[\]{}]')
# Written in place of an event that could not be saved, so later events keep their index.
SKIPPED_PLACEHOLDER = b'{"ph": "__skipped__"}'


@dataclass
class ExtractedEvents:
    """The `traceEvents` array of one file, copied to `events_path`, and what surrounds it."""

    events_path: Path
    top_level: dict
    form: str
    source_bytes: int
    json_bytes: int
    array_offset: int = 0  # where the events array starts in the (decompressed) JSON
    complete: bool = True
    warnings: list[str] = field(default_factory=list)
    # The array already cut into pieces (`events_path` is the first), when it was cut while copied.
    split: SplitEvents | None = None


def is_gzip(path: Path) -> bool:
    """True when the file starts with the gzip magic bytes."""
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def _copy_range(src: Path, offset: int, out: BinaryIO) -> None:
    """Append src[offset:] to `out`, in the kernel where it can (copy_file_range)."""
    out.flush()
    _copy_span(src, offset, src.stat().st_size, out)


def _raw_chunks(path: Path, warnings: list[str]) -> Generator[bytes, None, None]:
    """Yield the bytes of `path`, inflated when it is gzip (bounded: see `parsers.inflate`).

    A damaged or cut gzip stream ends the bytes early with a warning; one that inflates past the
    limit raises InflateLimitError.
    """
    with open(path, "rb") as raw:
        if raw.read(2) != GZIP_MAGIC:
            raw.seek(0)
            while chunk := raw.read(CHUNK):
                yield chunk
            return
        raw.seek(0)
        state = InflateState()
        yield from inflate_with_state(raw, path, path.stat().st_size, state, strict=False)
        if state.damage is not None:
            kept = "the cut" if "ends early" in state.damage else "the damage"
            warnings.append(f"{state.damage}; kept the bytes before {kept}")


def _describe_start(data: bytes | bytearray) -> str:
    text = data[:16]
    if not text:
        return "an empty file"
    if all(32 <= b < 127 or b in b"\r\n\t" for b in text):
        return f"text starting with {text.decode('ascii').strip()[:16]!r}"
    return "binary data"


_HEADER_TOKEN = re.compile(rb'["\[\]{}]')
_STRING_STOP = re.compile(rb'["\\]')
_WHITESPACE = re.compile(rb"[ \t\r\n]*")
_EVENTS_KEY = b'"traceEvents"'


class _HeaderScan:
    """Finds the '[' of the top-level `traceEvents` array in a buffer that grows between calls.

    One pass over the bytes, its state kept between calls: a long header (a huge string, deep
    nesting) costs linear time and no memory beyond the buffer itself.
    """

    def __init__(self, start: int) -> None:
        self.pos = start
        self.depth = 0
        self.in_string = False
        self.string_start = -1
        self.key_start = -1
        self.expect: bytes | None = None  # b":" after the key, b"[" after its colon
        self.closed = False  # the top-level object ended without the array

    def feed(self, buf: bytes | bytearray) -> tuple[int, int] | None:
        """(offset of the array's '[', offset where its key starts) once found, else None."""
        end = len(buf)
        while self.pos < end and not self.closed:
            if self.in_string:
                if not self._skip_string(buf):
                    break
                continue
            if self.expect is not None:
                found = self._after_key(buf)
                if found is not None or self.pos >= end:
                    return found
                continue
            match = _HEADER_TOKEN.search(buf, self.pos)
            if match is None:
                self.pos = end
                break
            self.pos = match.end()
            token = match.group()
            if token == b'"':
                self.in_string, self.string_start = True, match.start()
                continue
            self.depth += 1 if token in (b"{", b"[") else -1
            self.closed = self.depth == 0
        return None

    def _skip_string(self, buf: bytes | bytearray) -> bool:
        """Move past the next quote or escape of the open string; False when the buffer ends first."""
        match = _STRING_STOP.search(buf, self.pos)
        if match is None or match.end() >= len(buf) and match.group() == b"\\":
            self.pos = len(buf) if match is None else match.start()
            return False
        if match.group() == b"\\":
            self.pos = match.end() + 1
            return True
        self.in_string = False
        self.pos = match.end()
        if self.depth == 1 and buf[self.string_start : self.pos] == _EVENTS_KEY:
            self.expect, self.key_start = b":", self.string_start
        return True

    def _after_key(self, buf: bytes | bytearray) -> tuple[int, int] | None:
        """Past `"traceEvents"`: the colon, then the '[' (anything else: it was not the array's key)."""
        self.pos = _WHITESPACE.match(buf, self.pos).end()  # type: ignore[union-attr]
        if self.pos >= len(buf):
            return None
        char = buf[self.pos : self.pos + 1]
        if char != self.expect:
            self.expect = None
            return None
        if char == b"[":
            return self.pos, self.key_start
        self.expect = b"["
        self.pos += 1
        return None


def _loads_top_level(text: bytes | bytearray) -> object:
    """json.loads for the keys around the array; ValueError also for nesting too deep to parse."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _parse_header(header: bytes | bytearray, warnings: list[str]) -> dict:
    text = header.rstrip()
    if text.endswith(b","):
        text = text[:-1]
    try:
        parsed = _loads_top_level(text + b"}")
    except ValueError as exc:
        if str(exc) == "nested too deeply":
            warnings.append("the top-level keys before traceEvents are nested too deeply to read; skipped them")
        return {}
    return parsed if isinstance(parsed, dict) else {}


_TRAILER_CANDIDATE = re.compile(r"[}\[][ \t\r\n]*\](?=[ \t\r\n]*[,}])")
_JSON_SPACE = re.compile(r"[ \t\r\n]*")
_DECODER = json.JSONDecoder()
# How many characters the trailer checks may read, per character of the tail: keeps the search linear.
_TRAILER_WORK = 8


def _find_array_end(tail: bytes) -> tuple[int, dict] | None:
    """Find the ']' that closes traceEvents in the last bytes of the file.

    The trailer after it must be exactly the rest of the top-level object (`}` or `, "k": v ... }`).
    Several ']' can satisfy that (a later array of objects); the leftmost valid one is the answer.
    Each candidate is checked in place, reading only as far as its trailer parses, and the reading
    of all of them together is bounded: linear in the tail.
    """
    if tail.rstrip()[-1:] != b"}":
        return None  # cut or damaged: no trailer can end here
    text = tail.decode("latin-1")  # one character per byte: offsets stay byte offsets
    candidates = array("q", (match.end() - 1 for match in _TRAILER_CANDIDATE.finditer(text)))
    budget = _TRAILER_WORK * len(text) + (1 << 20)
    best: int | None = None
    invalid_after_valid = 0
    for pos in reversed(candidates):
        valid, read = _trailer_fits(text, pos + 1)
        budget -= read
        if valid:
            best, invalid_after_valid = pos, 0
        elif best is not None:
            invalid_after_valid += 1
            if invalid_after_valid > 64:
                break
        if budget < 0:
            return None  # an adversarial tail: leave it to the tolerant path rather than guess
    if best is None:
        return None
    rest = tail[best + 1 :].strip()
    try:
        parsed = {} if rest == b"}" else _loads_top_level(b"{" + rest[1:])
    except ValueError:
        return None
    return (best, parsed) if isinstance(parsed, dict) else None


def _trailer_fits(text: str, pos: int) -> tuple[bool, int]:
    """Whether text[pos:] is `}` or `, "key": value, ... }` then whitespace; and how many characters were read."""
    start = pos
    pos = _JSON_SPACE.match(text, pos).end()  # type: ignore[union-attr]
    if text.startswith(",", pos):
        while True:
            pos = _JSON_SPACE.match(text, pos + 1).end()  # type: ignore[union-attr]
            try:
                key, pos = _DECODER.raw_decode(text, pos)
                if not isinstance(key, str):
                    return False, pos - start
                pos = _JSON_SPACE.match(text, pos).end()  # type: ignore[union-attr]
                if not text.startswith(":", pos):
                    return False, pos - start
                pos = _JSON_SPACE.match(text, pos + 1).end()  # type: ignore[union-attr]
                _, pos = _DECODER.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                return False, max(exc.pos, pos) - start
            except RecursionError:
                return False, pos - start
            pos = _JSON_SPACE.match(text, pos).end()  # type: ignore[union-attr]
            if not text.startswith(",", pos):
                break
    if not text.startswith("}", pos):
        return False, pos - start
    after = _JSON_SPACE.match(text, pos + 1).end()  # type: ignore[union-attr]
    return after == len(text), after - start


def extract_events(path: Path, scratch: Path, pieces: int = 1) -> ExtractedEvents:
    """Copy the events array of a Chrome/Kineto trace to a scratch file, one streaming pass.

    An uncompressed object whose array end is found is copied straight into up to `pieces` pieces
    (`split`); anything else is copied whole, for `split_events` or the tolerant path.
    """
    warnings: list[str] = []  # damage of the gzip stream: the array may be cut
    notes: list[str] = []  # what was wrong around the array
    gzipped = is_gzip(path)
    chunks = _raw_chunks(path, warnings)
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        if chunk.strip():
            break
    stripped = buf.lstrip(b"\xef\xbb\xbf \t\r\n")
    lead = len(buf) - len(stripped)
    if not stripped:
        raise TraceFormatError(path, "expected a Chrome/Kineto JSON trace, found an empty file")
    if stripped[:1] not in (b"{", b"["):
        raise TraceFormatError(path, f"expected a Chrome/Kineto JSON trace, found {_describe_start(stripped)}")

    form = "object" if stripped[:1] == b"{" else "array"
    header: dict = {}
    if form == "object":
        buf = bytearray(buf)
        scan = _HeaderScan(lead)
        while (found := scan.feed(buf)) is None and not scan.closed and len(buf) <= HEADER_LIMIT:
            more = next(chunks, None)
            if more is None:
                break
            buf += more
        if found is None:
            expected = "expected a Chrome/Kineto JSON trace with traceEvents"
            if len(buf) > HEADER_LIMIT:
                limit = f"{HEADER_LIMIT >> 20} MiB"
                raise TraceFormatError(path, f"{expected} in its first {limit}, found none (jsonscan.HEADER_LIMIT)")
            raise TraceFormatError(path, f"{expected}, found {_what_object(buf)}")
        array_start, key_start = found
        header = _parse_header(buf[lead:key_start], notes)
        start = array_start
    else:
        start = lead

    events_path = scratch / f"{path.name}.events.json"
    if form == "object" and not gzipped and not warnings:
        chunks.close()
        size = path.stat().st_size
        end = _source_array_end(path, start, size)
        if end is not None:
            split = split_range(path, start, end[0] + 1, pieces, events_path)
            _check_first_event(path, events_path)
            return ExtractedEvents(
                events_path=events_path,
                top_level=clean_top_level({**header, **end[1]}, notes),
                warnings=notes,
                form=form,
                array_offset=start,
                source_bytes=size,
                json_bytes=size,
                split=split,
            )
    json_bytes = len(buf)
    with open(events_path, "wb") as out:
        out.write(buf[start:])
        if gzipped:
            for chunk in chunks:
                json_bytes += len(chunk)
                out.write(chunk)
        else:
            chunks.close()
            _copy_range(path, len(buf), out)
            json_bytes = path.stat().st_size
    _check_first_event(path, events_path)

    complete = not warnings
    trailer: dict = {}
    size = events_path.stat().st_size
    if form == "object":
        end = _source_array_end(events_path, 0, size)
        if end is None:
            complete = False
        else:
            trailer = end[1]
            with open(events_path, "r+b") as fh:
                fh.truncate(end[0] + 1)
    else:
        with open(events_path, "rb") as fh:
            fh.seek(max(0, size - 4096))
            if fh.read().rstrip()[-1:] != b"]":
                complete = False
    top_level = clean_top_level({**header, **trailer}, notes)
    return ExtractedEvents(
        events_path=events_path,
        top_level=top_level,
        form=form,
        array_offset=start,
        source_bytes=path.stat().st_size,
        json_bytes=json_bytes,
        complete=complete,
        warnings=warnings + notes,
    )


# The top-level keys are stored as JSON text and walked recursively (redaction): deeper ones are dropped.
TOP_LEVEL_DEPTH = 64


def clean_top_level(top_level: dict, warnings: list[str]) -> dict:
    """The top-level keys without those nested deeper than TOP_LEVEL_DEPTH, and with lone UTF-16
    surrogates (from `\\ud800` escapes; no UTF-8 text holds them) in their strings replaced by U+FFFD."""
    deep = [key for key, value in top_level.items() if _deeper_than(value, TOP_LEVEL_DEPTH)]
    if deep:
        warnings.append(f"{len(deep)} top-level keys nested deeper than {TOP_LEVEL_DEPTH} levels were skipped")
    counter = [0]
    clean = {_clean_text(str(k), counter): _clean_value(v, counter) for k, v in top_level.items() if k not in deep}
    if counter[0]:
        warnings.append(
            f"{counter[0]} strings of the top-level keys held lone surrogates (invalid text), replaced with U+FFFD"
        )
    return clean


def _deeper_than(value: object, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def _clean_value(value: object, counter: list[int]) -> object:
    if isinstance(value, str):
        return _clean_text(value, counter)
    if isinstance(value, dict):
        return {_clean_text(str(k), counter): _clean_value(v, counter) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_value(v, counter) for v in value]
    return value


def _clean_text(text: str, counter: list[int]) -> str:
    clean = _LONE_SURROGATE.sub("\ufffd", text)
    counter[0] += clean != text
    return clean


def _source_array_end(path: Path, start: int, size: int) -> tuple[int, dict] | None:
    """Where the events array that starts at `start` ends in the file (the offset of its ']'),
    and the trailer: searched in growing tails of the file, never before `start`."""
    for window in TAIL_WINDOWS:
        offset = max(start, size - window)
        with open(path, "rb") as fh:
            fh.seek(offset)
            end = _find_array_end(fh.read())
        if end is not None:
            return offset + end[0], end[1]
        if offset == start:
            return None
    return None


def _what_object(buf: bytes | bytearray) -> str:
    """Describe a top-level JSON object that has no usable traceEvents array."""
    try:
        value = _loads_top_level(buf)
    except ValueError:
        return "a JSON object"
    if not isinstance(value, dict):
        return "a JSON object"
    if "traceEvents" in value:
        return f"traceEvents holding {_json_kind(value['traceEvents'])}, not an array"
    keys = sorted(value)[:6]
    hint = " (a Chakra execution trace?)" if {"nodes", "schema"} <= set(value) else ""
    return f"a JSON object with keys {keys}{hint}"


def _json_kind(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _check_first_event(path: Path, events_path: Path) -> None:
    with open(events_path, "rb") as fh:
        head = fh.read(4096)
    body = head[1:].lstrip()
    if body[:1] in (b"{", b"]", b""):
        return
    if body[:1] == b"[":
        raise TraceFormatError(
            path,
            "expected trace events (JSON objects), found a JSON array of arrays (a PyTorch memory-timeline export?)",
        )
    kinds = {b'"': "strings", b"t": "booleans", b"f": "booleans", b"n": "nulls"}
    what = kinds.get(body[:1], "numbers" if body[:1] in b"-0123456789" else None)
    found = f"a JSON array of {what}" if what else _describe_start(body)
    raise TraceFormatError(path, f"expected trace events (JSON objects), found {found}")


@dataclass
class Recovery:
    """What the tolerant path kept, repaired and dropped."""

    events_path: Path
    kept: int
    repaired: int
    skipped: int
    damage_offset: int | None


def _escape_controls(span: bytes) -> bytes:
    def fix(match: re.Match[bytes]) -> bytes:
        return _CONTROL.sub(lambda c: b"\\u%04x" % c.group()[0], match.group())

    return _STRING.sub(fix, span)


def _escape_inner_quotes(span: bytes) -> bytes:
    def fix(match: re.Match[bytes]) -> bytes:
        return match.group(1) + re.sub(rb'(?<!\\)"', rb'\\"', match.group(2))

    return _VALUE_WITH_QUOTES.sub(fix, span)


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _replace_lone_surrogates(span: bytes) -> bytes:
    """The strings of `span` with escapes of lone UTF-16 surrogates (which no UTF-8 text can hold)
    replaced by U+FFFD; other strings keep their bytes."""

    def fix(match: re.Match[bytes]) -> bytes:
        token = match.group()
        if not _SURROGATE_ESCAPE.search(token):
            return token
        try:
            text = json.loads(token)
        except ValueError:
            return token
        clean = _LONE_SURROGATE.sub("\ufffd", text)
        return token if clean == text else json.dumps(clean).encode()

    return _STRING.sub(fix, span)


def _repair(span: bytes) -> bytes | None:
    escaped = _escape_controls(span)
    candidates = (
        escaped,
        _escape_controls(_escape_inner_quotes(span)),
        _replace_lone_surrogates(escaped),
        _replace_lone_surrogates(escaped.decode("utf-8", "replace").encode()),
    )
    for candidate in candidates:
        if _is_clean_event(candidate):
            return candidate
    return None


def _is_clean_event(span: bytes) -> bool:
    """A JSON object in UTF-8 that DuckDB can read too (no escape of a lone surrogate)."""
    try:
        good = isinstance(json.loads(span), dict)
    except (ValueError, RecursionError):
        return False
    return good and not (_SURROGATE_ESCAPE.search(span) and _replace_lone_surrogates(span) != span)


def recover_events(events_path: Path, out_path: Path) -> Recovery:
    """Walk a damaged events array object by object; write the good and repaired events."""
    kept = repaired = skipped = 0
    damage: int | None = None
    with open(events_path, "rb") as fh, open(out_path, "wb") as out:
        size = fh.seek(0, 2)
        data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        try:
            out.write(b"[\n")
            pos = 1
            first = True
            walker = _ObjectWalker(data, size)
            while True:
                while pos < size and data[pos] in b" \t\r\n,":
                    pos += 1
                if pos >= size:
                    damage = size  # the array never closes: cut after a complete event
                    break
                if data[pos] == ord("]"):
                    break
                if data[pos] != ord("{"):
                    damage = pos
                    break
                end, parsed = walker.object_end(pos)
                if end is None:
                    damage = pos
                    break
                span = bytes(data[pos:end])
                pos = end
                if not (parsed and span.isascii() and not _SURROGATE_ESCAPE.search(span)) and not _is_clean_event(span):
                    fixed = _repair(span)
                    if fixed is None:
                        skipped += 1
                        span = SKIPPED_PLACEHOLDER
                    else:
                        span = fixed
                        repaired += 1
                out.write(span if first else b",\n" + span)
                first = False
                kept += span is not SKIPPED_PLACEHOLDER
            out.write(b"\n]\n")
        finally:
            if isinstance(data, mmap.mmap):
                data.close()
    return Recovery(out_path, kept, repaired, skipped, damage)


# The walk reads a window of the bytes as latin-1 text (one character per byte: offsets stay byte
# offsets) and lets the C JSON scanner find where a well-formed object ends: about 5x the speed of
# the token loop of `_object_end`, which is left for the objects the scanner rejects.
_WALK_WINDOW = 16 << 20
_WALK_MARGIN = 1 << 20


class _ObjectWalker:
    """Finds where each object of an events array ends, in a window that moves along the bytes."""

    def __init__(self, data: bytes | mmap.mmap, size: int) -> None:
        self.data = data
        self.size = size
        self.start = 0
        self.text = ""

    def object_end(self, pos: int) -> tuple[int | None, bool]:
        """Where the object at `pos` ends (None: it never does), and whether it is well-formed JSON."""
        window_end = self.start + len(self.text)
        if pos < self.start or (pos + _WALK_MARGIN > window_end and window_end < self.size):
            self.start = pos
            self.text = bytes(self.data[pos : pos + _WALK_WINDOW]).decode("latin-1")
        try:
            _, end = _DECODER.raw_decode(self.text, pos - self.start)
        except (ValueError, RecursionError):
            return _object_end(self.data, pos), False
        return self.start + end, True


def _object_end(data: bytes | mmap.mmap, start: int) -> int | None:
    depth = 0
    for match in _LINE_TOKEN.finditer(data, start):
        tok = match.group()
        if tok[:1] == b'"':
            continue
        if tok in (b"{", b"["):
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return match.end()
    return None


# Two objects with a line break between them: `},\n  {`. Valid JSON has no raw line break inside a
# string, so both braces are structural; a cut there at any depth but the array's own leaves
# brackets unbalanced on both sides, which the JSON reader rejects (the caller then reads whole).
_EVENT_BOUNDARY = re.compile(rb"\}[ \t\r\n]*,[ \t\r\n]*\{")
SPLIT_MIN_BYTES = 64 << 20
_SPLIT_WINDOW = 4 << 20


@dataclass
class SplitEvents:
    """An events array cut into pieces: `parts[0]` is the original file, shortened; `gaps` are the
    bytes between two events that each cut removed (`,` and the line break around it)."""

    parts: list[Path]
    gaps: list[bytes] = field(default_factory=list)


def split_events(events_path: Path, pieces: int, min_bytes: int | None = None) -> SplitEvents:
    """Cut a complete events array into up to `pieces` arrays at event boundaries near equal sizes.

    DuckDB reads a list of files in parallel but one array on one thread. `join_events` puts the
    original bytes back. The first piece is `events_path` itself, shortened in place.
    """
    size = events_path.stat().st_size
    if pieces < 2 or size < (SPLIT_MIN_BYTES if min_bytes is None else min_bytes):
        return SplitEvents([events_path])
    cuts = _find_cuts(events_path, 0, size, pieces)
    if not cuts:
        return SplitEvents([events_path])
    split = _write_pieces(events_path, cuts, 0, size, events_path, with_first=False)
    with open(events_path, "r+b") as fh:
        fh.truncate(cuts[0][0])
        fh.seek(cuts[0][0])
        fh.write(b"]")
    return split


def split_range(src: Path, start: int, end: int, pieces: int, first: Path, min_bytes: int | None = None) -> SplitEvents:
    """Write the complete events array `src[start:end]` as up to `pieces` arrays cut at event
    boundaries, the first at `first`: `split_events` without first copying the array whole."""
    cuts = []
    if pieces >= 2 and end - start >= (SPLIT_MIN_BYTES if min_bytes is None else min_bytes):
        cuts = _find_cuts(src, start, end, pieces)
    return _write_pieces(src, cuts, start, end, first, with_first=True)


def _find_cuts(src: Path, start: int, end: int, pieces: int) -> list[tuple[int, int]]:
    """(end of the event before, start of the event after) of each cut of `src[start:end]`."""
    size = end - start
    cuts: list[tuple[int, int]] = []
    with open(src, "rb") as fh:
        for i in range(1, pieces):
            fh.seek(max(start + i * size // pieces, cuts[-1][1] if cuts else 0))
            window = fh.read(min(_SPLIT_WINDOW, max(0, end - fh.tell())))
            base = fh.tell() - len(window)
            # the array's own events are the least indented: take the first boundary of least indent
            best: tuple[int, int, int] | None = None
            for match in _EVENT_BOUNDARY.finditer(window):
                gap = match.group(0)
                if b"\n" in gap:
                    indent = len(gap) - 1 - gap.rindex(b"\n") - 1
                    if best is None or indent < best[0]:
                        best = (indent, base + match.start() + 1, base + match.end() - 1)
                    if indent == 0:
                        break
            if best is not None:
                cuts.append(best[1:])
    return cuts


def _write_pieces(
    src: Path, cuts: list[tuple[int, int]], start: int, end: int, first: Path, with_first: bool
) -> SplitEvents:
    """The pieces of `src[start:end]` cut at `cuts`, the first at `first` (written here only
    `with_first`; else the caller shortens `first` itself).

    The pieces are copied side by side (the kernel copies, the threads only wait): about half the
    time of one after the other on two cores.
    """
    starts = [start] + [after for _, after in cuts]
    stops = [before for before, _ in cuts] + [end]
    parts = [first] + [first.with_name(f"{first.name}.part{n}") for n in range(1, len(starts))]
    last = len(parts) - 1

    def write(n: int) -> None:
        with open(parts[n], "wb", buffering=0) as out:
            if n > 0:
                out.write(b"[")
            _copy_span(src, starts[n], stops[n], out)
            if n < last:
                out.write(b"]")

    with ThreadPoolExecutor(len(parts)) as pool:
        list(pool.map(write, range(0 if with_first else 1, len(parts))))
    gaps = []
    with open(src, "rb") as fh:
        for before, after in cuts:
            fh.seek(before)
            gaps.append(fh.read(after - before))
    return SplitEvents(parts, gaps)


def join_events(split: SplitEvents) -> Path:
    """Put the pieces back into the first file, byte for byte as before the split; return it."""
    first = split.parts[0]
    if len(split.parts) == 1:
        return first
    with open(first, "r+b", buffering=0) as out:
        out.seek(0, os.SEEK_END)
        out.truncate(out.tell() - 1)  # the "]" that closed the first piece
        out.seek(0, os.SEEK_END)
        last = len(split.parts) - 1
        for n, (part, gap) in enumerate(zip(split.parts[1:], split.gaps, strict=True), start=1):
            size = part.stat().st_size
            out.write(gap)
            _copy_span(part, 1, size - 1 if n < last else size, out)
            part.unlink()
    return first


# A cut trace is read fast up to an event boundary this far before its end; only the events after
# it go through the event-by-event path (`split_truncated`).
TRUNCATED_TAIL = 1 << 20
# Where the events have no line breaks between them (a compact trace: `[{...},{...}]`), each `},{`
# near the cut that is followed by a key events start with is a candidate boundary. One inside a
# nested value is rejected by a structural walk of the bytes after it (COMPACT_CHECK_BYTES of them,
# or to the cut), and at last by the JSON reader, which refuses a head whose brackets do not balance.
# COMPACT_CHECKS candidates are walked at most, and COMPACT_TRIES of those that pass are returned.
_COMPACT_BOUNDARY = re.compile(rb'\}[ \t\r\n]*,[ \t\r\n]*\{(?=[ \t\r\n]*"(?:' + _KNOWN_KEYS + rb')")')
COMPACT_CHECK_BYTES = 64 << 10
COMPACT_CHECKS = 32
COMPACT_TRIES = 3


@dataclass
class TruncatedSplit:
    """A cut events array: `head` holds the events before `tail_start`, as complete arrays; `tail` is
    the array of the rest (from `tail_start` of the events file, after a '[' of its own), to recover."""

    head: SplitEvents
    tail: Path
    tail_start: int


def truncated_boundaries(events_path: Path) -> list[tuple[int, int]]:
    """Candidate event boundaries (end of the event before, start of the event after) in the last
    TRUNCATED_TAIL bytes of an events array that never closes, best first; none where it is small.

    Kineto's layout gives one: the least indented `},\n{` (the array's own events: see `_find_cuts`).
    A compact array gives up to COMPACT_TRIES (`_compact_boundaries`). Each is a guess that the JSON
    reader checks: a cut inside an event leaves the head's brackets unbalanced.
    """
    size = events_path.stat().st_size
    if size < 2 * TRUNCATED_TAIL:
        return []
    cuts = _find_cuts(events_path, size - TRUNCATED_TAIL, size, 2)
    return cuts or _compact_boundaries(events_path, size - TRUNCATED_TAIL, size)


def _compact_boundaries(events_path: Path, start: int, end: int) -> list[tuple[int, int]]:
    """The first `},{` of `events_path[start:end]` whose following bytes walk as a run of events."""
    with open(events_path, "rb") as fh:
        fh.seek(start)
        window = fh.read(end - start)
    found: list[tuple[int, int]] = []
    for checked, match in enumerate(_COMPACT_BOUNDARY.finditer(window)):
        if checked >= COMPACT_CHECKS or len(found) >= COMPACT_TRIES:
            break
        after = match.end() - 1
        if _walks_as_events(window, after, after + COMPACT_CHECK_BYTES):
            found.append((start + match.start() + 1, start + after))
    return found


def _walks_as_events(data: bytes, start: int, stop: int) -> bool:
    """Whether `data[start:]` reads as the objects of an array up to `stop`, the data's end or a cut
    inside a string: brackets that match and only a comma between two objects; after a ']' that
    would close the array, the rest of a top-level object that ends where the data ends."""
    stack = bytearray()
    pos = start
    after_array = False
    for match in _TOKEN.finditer(data, start):
        if match.start() >= stop:
            return True
        gap = data[pos : match.start()]
        pos = match.end()
        if b'"' in gap:
            return True  # a string that never closes: the data ends inside it
        token = match.group()[0]
        if not stack and not after_array:
            separator = gap.strip(b" \t\r\n")
            if token == ord("]") and not separator:
                after_array = True
                continue
            if token != ord("{") or separator != (b"," if match.start() > start else b""):
                return False
        elif not stack and token in b"]}":
            # a nested array ends in more closing brackets and bytes; the events array in its trailer's '}'
            return token == ord("}") and not data[pos:].strip()
        if token in b"{[":
            stack.append(token)
        elif token in b"]}" and stack.pop() != (ord("[") if token == ord("]") else ord("{")):
            return False
    return True


def split_truncated(events_path: Path, pieces: int, tail: Path, boundary: tuple[int, int]) -> TruncatedSplit:
    """Cut an events array that never closes at `boundary` (from `truncated_boundaries`): the head
    before it as up to `pieces` complete arrays, the rest as `tail`. The events file is left as it was."""
    head_end, tail_start = boundary
    with open(tail, "wb", buffering=0) as out:
        out.write(b"[")
        _copy_span(events_path, tail_start, events_path.stat().st_size, out)
    head = split_range(events_path, 0, head_end, pieces, tail.with_name(tail.name + ".head"))
    with open(head.parts[-1], "ab") as last:
        last.write(b"\n]")
    return TruncatedSplit(head, tail, tail_start)


def _copy_span(src: Path, start: int, end: int, out: BinaryIO) -> None:
    """Append src[start:end] to `out` (unbuffered, or flushed), in the kernel where it can."""
    with open(src, "rb") as fh:
        offset, remaining = start, end - start
        try:
            while remaining > 0:
                copied = os.copy_file_range(fh.fileno(), out.fileno(), remaining, offset)
                if copied == 0:
                    break
                offset += copied
                remaining -= copied
        except (AttributeError, OSError):
            pass
        if remaining > 0:
            fh.seek(offset)
            while remaining > 0 and (chunk := fh.read(min(CHUNK, remaining))):
                out.write(chunk)
                remaining -= len(chunk)
