"""The one JSON writer (orjson) for every JSON output: query results, the analyze, diff and throughput reports.

What it writes for each value:

- NaN and +-infinity (Python, numpy or Decimal) become `null`: JSON has no such numbers.
- Integers stay exact at any size: beyond the 64 bits orjson writes itself, the digits are written as a JSON
  number (DuckDB's HUGEINT/UHUGEINT, at most 39 digits). Readers with 64-bit floats (JavaScript's
  `JSON.parse`) round such numbers; Python's `json` keeps them. An integer of more digits than Python
  prints (4300 by default, `sys.set_int_max_str_digits`) is refused with a UserError.
- Decimals stay exact: an integral one as an integer (`1.00` -> `1`), any other as its digits (`0.10` -> `0.1`).
- Dates, times and datetimes as ISO 8601 text; numpy arrays and scalars as numbers and lists; a polars
  Series as a list; anything else as its `str()`.
- Text stays exact. A string with a lone surrogate (a file name that is not UTF-8) is written with a
  `\\udcxx` escape, so that `json.loads` gives it back; as a key it is written as that escape's text.
- Nesting deeper than `MAX_DEPTH` levels is refused with a UserError (orjson's own limit).

Compact output has no spaces (`[{"x":null}]`); indented output uses two spaces.
"""

from __future__ import annotations

import json
import math
import sys
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import orjson

from traceview.errors import UserError

MAX_DEPTH = 254  # levels of lists and objects; orjson refuses deeper nesting
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
_INT_RANGE = (-(2**63), 2**64 - 1)  # what orjson writes itself


def dumps(value: Any, *, indent: bool = False) -> str:
    """`value` as JSON text, ending in a newline when `indent` is set (a file), without one otherwise."""
    options = _OPTIONS | (orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE if indent else 0)
    try:
        data = orjson.dumps(value, default=json_default, option=options)
    except orjson.JSONEncodeError:  # rare values orjson refuses: big integers, lone surrogates, deep nesting
        data = orjson.dumps(_writable(value, 0), default=json_default, option=options)
    return data.decode()


def json_default(value: object) -> object:
    """What orjson writes for a value it does not know: see the module docstring."""
    if isinstance(value, Decimal):
        return _decimal(value)
    if isinstance(value, (date, datetime, time)):
        return value.isoformat()
    to_list = getattr(value, "to_list", None)  # a polars Series (a list cell)
    if callable(to_list):
        return to_list()
    return str(value)


def _decimal(value: Decimal) -> object:
    if not value.is_finite():
        return None
    if value == value.to_integral_value():
        return _number(int(value))
    text = str(value)  # exact digits; not normalize(), which rounds to the context's precision
    return orjson.Fragment((text if "E" in text else text.rstrip("0")).encode())


def _number(value: int) -> object:
    if _INT_RANGE[0] <= value <= _INT_RANGE[1]:
        return value
    try:
        return orjson.Fragment(str(value).encode())
    except ValueError as exc:  # past sys.get_int_max_str_digits()
        limit = sys.get_int_max_str_digits()
        raise UserError(f"an integer of more than {limit} digits cannot be written as JSON") from exc


def _writable(value: Any, depth: int) -> Any:
    """`value` with what orjson refuses made writable: big ints, strings with lone surrogates; depth checked."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return _number(value)
    if isinstance(value, str):
        return _text(value)
    if callable(getattr(value, "to_list", None)):  # a polars Series, as json_default writes it
        value = value.to_list()
    if isinstance(value, (dict, list, tuple)) and depth >= MAX_DEPTH:
        raise UserError(f"the data is nested more than {MAX_DEPTH} levels deep; JSON output refuses it")
    if isinstance(value, dict):
        return {_key(k): _writable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_writable(v, depth + 1) for v in value]
    return value


def _text(value: str) -> object:
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return orjson.Fragment(json.dumps(value).encode())  # \\udcxx escapes: json.loads gives the same text
    return value


def _key(key: object) -> object:
    if isinstance(key, str):
        return key.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(key, float) and not math.isfinite(key):
        return str(key)
    return key
