"""JSON output of query results: exact integers, decimals and dates made JSON-friendly."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal


def json_default(value: object) -> object:
    """`default=` for json.dumps: integral decimals stay integers, dates become ISO text."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)
