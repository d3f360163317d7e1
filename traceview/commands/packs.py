"""`traceview packs list|show|check`: the query packs, and checking a pack before sharing it."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

from traceview.packs import Pack, PackError, Query, builtin_packs, load_pack
from traceview.parsers.model import TABLES
from traceview.parsers.parsed import empty_table
from traceview.sandbox import drop_shared, materialize_shared, rule_check, run_query, sandboxed_connection
from traceview.store import MANIFEST

# The thing an error names: a quoted identifier, or "with name X".
_NAMED = re.compile(r'"([^"]+)"|with name (\w+)')


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
        if query.problem:
            lines.append(f"    cannot be loaded: {query.problem}")
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
        pq.write_table(empty_table(schema), directory / table / "part-empty.parquet")
    (directory / MANIFEST).write_text('{"inputs": [], "tables": {}}\n')
    return directory


def _blamed_line(error: str, sql: str) -> int | None:
    """DuckDB often names the culprit without a line: find the first SQL line that mentions it."""
    for name in _NAMED.findall(error):
        token = next(group for group in name if group)
        for number, text in enumerate(sql.splitlines(), start=1):
            if re.search(rf"(?<![A-Za-z0-9_]){re.escape(token)}(?![A-Za-z0-9_])", text):
                return number
    return None


def _located(error: str, sql_line: int | None, query: Query) -> str:
    """Turn the SQL line DuckDB blamed into file:line (a fragment's, if included)."""
    sql_line = sql_line or _blamed_line(error, query.sql)
    file, line = query.source_of(sql_line) if sql_line else (query.path, query.sql_line)
    message = error.split(": ", 1)[1] if error.startswith(str(query.path)) else error
    return f"{file}:{line}: {message}"


def check_pack(directory: Path) -> list[str]:
    """Every problem in a pack directory, each as `file:line: message`; empty when all is well."""
    try:
        pack = load_pack(directory)
    except PackError as exc:
        return [str(exc)]
    problems = list(pack.problems)
    with tempfile.TemporaryDirectory(prefix="traceview-check-") as tmp:
        store = empty_store(Path(tmp))
        con = sandboxed_connection(store)
        try:
            built = materialize_shared(con, pack, limit_s=30)
            problems += [f"{item.relation.fragment}: materialize {item.error}" for item in built if item.error]
            drop_shared(con, built)
            for query in pack.queries:
                if query.problem:
                    problems.append(query.problem)
                    continue
                result = run_query(con, query, limit_s=30)
                if result.error and result.frame is not None:  # the query ran; a finding rule did not
                    problems.append(result.error)
                    continue
                if result.error:
                    problems.append(_located(result.error, result.error_sql_line, query))
                    continue
                assert result.frame is not None
                for rule in query.findings:
                    if error := rule_check(con, query, result.frame, rule):
                        problems.append(error)
        finally:
            con.close()
    return problems
