"""`traceview packs list|show|check`: the query packs, and checking a pack before sharing it."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

from parsers.model import TABLES
from traceview.packs import Pack, PackError, Query, builtin_packs, load_pack
from traceview.sandbox import rule_check, run_query, sandboxed_connection
from traceview.store import MANIFEST

_DUCKDB_LINE = re.compile(r"LINE (\d+):")


def list_packs() -> str:
    """One line per built-in pack: name, version, number of queries, description."""
    lines = []
    for pack in builtin_packs():
        lines.append(f"{pack.name:<12} {pack.version:<8} {len(pack.queries):>3} queries  {pack.description}")
    return "\n".join(lines) + "\n"


def show_pack(pack: Pack) -> str:
    """The pack's queries with their titles, parameters and finding rules."""
    lines = [f"{pack.name} {pack.version}".rstrip(), pack.description, ""]
    for query in pack.queries:
        lines.append(f"{query.name}: {query.title}")
        if query.description:
            lines.append(f"    {query.description}")
        for param in query.params:
            lines.append(f"    param {param.name} {param.type} = {param.default!r}  {param.description}".rstrip())
        for rule in query.findings:
            lines.append(f"    finding [{rule.severity}] when {rule.condition}: {rule.message}")
    return "\n".join(line for line in lines) + "\n"


def empty_store(directory: Path) -> Path:
    """A store with every table of the model and no rows."""
    for table, schema in TABLES.items():
        (directory / table).mkdir(parents=True, exist_ok=True)
        pq.write_table(schema.empty_table(), directory / table / "part-empty.parquet")
    (directory / MANIFEST).write_text('{"inputs": [], "tables": {}}\n')
    return directory


def _located(error: str, query: Query) -> str:
    """Turn DuckDB's 'LINE n:' (relative to the SQL) into file:line (a fragment's, if included)."""
    match = _DUCKDB_LINE.search(error)
    file, line = query.source_of(int(match.group(1))) if match else (query.path, query.sql_line)
    message = error.split(": ", 1)[1] if error.startswith(str(query.path)) else error
    return f"{file}:{line}: {message}"


def check_pack(directory: Path) -> list[str]:
    """Every problem in a pack directory, each as `file:line: message`; empty when all is well."""
    try:
        pack = load_pack(directory)
    except PackError as exc:
        return [str(exc)]
    problems = []
    with tempfile.TemporaryDirectory(prefix="traceview-check-") as tmp:
        store = empty_store(Path(tmp))
        con = sandboxed_connection(store)
        try:
            for query in pack.queries:
                result = run_query(con, query, limit_s=30)
                if result.error:
                    problems.append(_located(result.error, query))
                    continue
                assert result.frame is not None
                for rule in query.findings:
                    if error := rule_check(con, query, result.frame, rule):
                        problems.append(error)
        finally:
            con.close()
    return problems
