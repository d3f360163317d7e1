"""`traceview schema`: the model's tables and columns, one line each."""

from __future__ import annotations

from traceview.engine import CONVENIENCE_VIEWS, DEVICE_VIEWS
from traceview.parsers.model import TABLE_DOCS, TABLES


def describe() -> str:
    """One line per table and per column: `table.column  type  meaning`."""
    lines = []
    width = max(len(f"{t}.{f.name}") for t, s in TABLES.items() for f in s)
    for table, schema in TABLES.items():
        lines.append(f"{table:<{width}}  {'table':<14}  {TABLE_DOCS[table]}")
        for field in schema:
            doc = (field.metadata or {}).get(b"doc", b"").decode()
            lines.append(f"{table + '.' + field.name:<{width}}  {str(field.type):<14}  {doc}")
    for view, (doc, _) in CONVENIENCE_VIEWS.items():
        lines.append(f"{view:<{width}}  {'view':<14}  {doc}")
    for view, doc in DEVICE_VIEWS.items():
        lines.append(f"{view:<{width}}  {'view':<14}  {doc}")
    return "\n".join(lines) + "\n"
