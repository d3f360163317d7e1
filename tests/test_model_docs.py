"""The trace model's documentation is generated from the code and kept in step with it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa

from traceview.parsers.model import SLICE_KINDS, TABLE_DOCS, TABLES, render_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_docs_model_md_matches_the_code() -> None:
    """docs/model.md equals parsers.model.render_markdown() (regenerate: python -m parsers.model > docs/model.md)."""
    assert (ROOT / "docs" / "model.md").read_text() == render_markdown()


def test_module_main_prints_the_markdown() -> None:
    """`python -m traceview.parsers.model` prints exactly render_markdown()."""
    command = [sys.executable, "-m", "traceview.parsers.model"]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0
    assert proc.stdout == render_markdown()


def test_every_table_and_column_is_documented() -> None:
    """Each table has a description and each column a one-line `doc`; times are int64 ns."""
    assert set(TABLE_DOCS) == set(TABLES)
    markdown = render_markdown()
    for table, schema in TABLES.items():
        assert f"## `{table}`" in markdown
        for field in schema:
            doc = (field.metadata or {}).get(b"doc", b"").decode()
            assert doc and "\n" not in doc, f"{table}.{field.name}"
            assert f"| `{field.name}` | `{field.type}` | {doc} |" in markdown
            if field.name.endswith("_ns"):
                assert field.type == pa.int64(), f"{table}.{field.name}"
        if table != "traces":
            assert schema.names[:2] == ["trace_id", "rank"], table


def test_slice_kinds_are_documented() -> None:
    """The `kind` column's doc lists every slice kind."""
    doc = TABLES["slices"].field("kind").metadata[b"doc"].decode()
    assert all(kind in doc for kind in SLICE_KINDS)
