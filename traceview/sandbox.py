"""Running untrusted pack queries: read-only, no file or network access, with time and memory limits.

The connection gets the store's views first; then external access is disabled (except the
store's own directory), and the configuration is locked, so a query cannot read or write
other files, attach databases, install or load extensions, or change settings. Each query
must be a single SELECT (WITH included), as DuckDB's own parser classifies it, that reads only
the trace model's tables and views: DuckDB's catalog and settings (`duckdb_settings()`,
`information_schema`, `current_setting()`...) and table functions other than `range`,
`generate_series` and `unnest` are refused, as they would show local paths and settings.

DuckDB may use `memory_limit()` for the pack's queries (`DEFAULT_MEMORY_SHARE` of RAM, or
TRACEVIEW_PACK_MEMORY_LIMIT), and spill as much again into a private temporary directory that
is removed at exit; a query's result may take as much again in Python. A query that needs more
fails with its own error, and the others still run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import duckdb
import polars as pl
import pyarrow as pa

from traceview.engine import connect
from traceview.packs import IDENTIFIER, FindingRule, Pack, PackError, Query, SharedRelation, with_shared
from traceview.units import SCALES, human

DEFAULT_TIME_LIMIT_S = 60.0
DEFAULT_MEMORY_SHARE = 0.5
"""The share of the machine's memory (or of the process's cgroup limit) DuckDB may use for packs."""
ENV_MEMORY_LIMIT = "TRACEVIEW_PACK_MEMORY_LIMIT"
"""Overrides the memory limit: a DuckDB size (`24GB`) or a share of memory (`80%`)."""
MAX_FORMAT_NUMBER = 100
"""The largest width or precision a finding message's `{field:spec}` may ask for."""
MAX_MESSAGE_CHARS = 2000
"""A rendered finding message is cut to this many characters."""
TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
"""The table functions pack SQL may call; the others read files or DuckDB's catalog and settings."""
_HIDDEN_FUNCTIONS = frozenset(
    {
        "current_setting",
        "getenv",
        "getvariable",
        "current_schemas",
        "col_description",
        "obj_description",
        "shobj_description",
        "pg_sleep",
        "write_log",
        "json_execute_serialized_sql",
    }
)
_HIDDEN_PREFIXES = ("duckdb_", "pragma_", "pg_get_", "sqlite_")
_HIDDEN_SCHEMAS = frozenset({"information_schema", "pg_catalog"})
_HIDDEN_CATALOGS = frozenset({"system", "temp"})
_SHARED_AT_ONCE = 2  # shared relations built side by side (DuckDB's threads serve both)
# A pack's relations and queries running at once, each on a cursor: DuckDB's threads serve them all, and
# one fills the moments another leaves a thread idle (single-threaded sorts, result conversion, findings).
# 2 and 4 were slower than 3 on 10 M slices and on a 700 k-slice store (2 cores).
QUERIES_AT_ONCE = 3
_LINE = re.compile(r"LINE (\d+):")
_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([^{}]*))?\}")
_OPTIONAL = re.compile(r"\[([^\[\]]*\{[^\[\]]*)\]")  # a bracketed part of a finding message with a field in it


@dataclass
class Finding:
    """One finding raised by a query's rule on one result row."""

    query: str
    severity: str
    message: str
    row: dict


@dataclass
class QueryResult:
    """The outcome of one query: rows and findings, or the error that stopped it."""

    query: Query
    frame: pl.DataFrame | None
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    error_sql_line: int | None = None  # the SQL line DuckDB blamed ("LINE n:"), when it said
    timed_out: bool = False


@dataclass
class SharedResult:
    """One shared relation of a pack run: computed once into its table, or the error that stopped it."""

    relation: SharedRelation
    rows: int | None
    seconds: float
    error: str | None = None


class QueryRejected(Exception):
    """The SQL is not a single read-only SELECT."""


class ResultTooLarge(Exception):
    """A query's result would take more memory than pack queries may use."""


class RuleFailed(Exception):
    """A finding rule's condition does not run; the message is located at the rule's line."""


def memory_limit_bytes() -> int:
    """What DuckDB may use for pack queries: TRACEVIEW_PACK_MEMORY_LIMIT, else `DEFAULT_MEMORY_SHARE` of memory."""
    raw = os.environ.get(ENV_MEMORY_LIMIT, "").strip()
    total = _memory_bytes()
    if raw.endswith("%"):
        try:
            return max(1 << 20, int(total * float(raw[:-1]) / 100))
        except ValueError:
            pass
    elif raw:
        try:
            return max(1 << 20, _size(raw))
        except ValueError:
            pass
    return int(total * DEFAULT_MEMORY_SHARE)


def _size(text: str) -> int:
    """Bytes in a size like `24GB`, `512MiB` or `1000000`."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?)B?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError(f"not a size: {text!r}")
    number, unit, binary = match.groups()
    power = "KMGT".find(unit.upper()) + 1 if unit else 0
    return int(float(number) * ((1024 if binary else 1000) ** power))


def _memory_bytes() -> int:
    """Physical memory, or the cgroup's limit when lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def sandboxed_connection(
    stores: Path | list[Path],
    trace_id: str | list[str] | None = None,
    threads: int | None = None,
    memory: int | None = None,
) -> duckdb.DuckDBPyConnection:
    """A connection to one or more stores (some traces of them: `trace_id`) that untrusted SQL can use safely;
    `threads` bounds DuckDB's threads (default: the machine's CPUs), `memory` its memory (`memory_limit_bytes()`)."""
    stores = [stores] if isinstance(stores, Path) else list(stores)
    con = connect(stores, trace_id)
    if threads is not None:
        con.execute(f"SET threads = {int(threads)}")
    allowed = ", ".join("'" + str(s.resolve()).replace("'", "''") + "/'" for s in stores)
    memory = memory or memory_limit_bytes()
    # A private directory for DuckDB to spill into, removed with the connection (or at exit).
    spill_dir = tempfile.mkdtemp(prefix="traceview-spill-")
    weakref.finalize(con, shutil.rmtree, spill_dir, True)
    spill = str(Path(spill_dir) / "duckdb").replace("'", "''")
    con.execute(f"SET memory_limit = '{memory}B'")
    con.execute(f"SET temp_directory = '{spill}'")
    con.execute(f"SET max_temp_directory_size = '{memory}B'")
    con.execute(f"SET allowed_directories = [{allowed}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def check_select(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Raise QueryRejected unless `sql` is exactly one SELECT statement."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryRejected(_first_line(exc)) from exc
    if len(statements) != 1:
        raise QueryRejected(f"expected one statement, found {len(statements)}")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise QueryRejected(f"only SELECT queries may run, found {kind.name}")
    _check_reads(sql)


_parsers = threading.local()


def _check_reads(sql: str) -> None:
    """Raise QueryRejected when the SELECT reads DuckDB's catalog, settings or files (its syntax tree says)."""
    if not hasattr(_parsers, "con"):
        _parsers.con = duckdb.connect()  # parses only: the SQL is a parameter of json_serialize_sql
    text = _parsers.con.execute("SELECT json_serialize_sql($1)", [sql]).fetchall()[0][0]
    try:
        tree = json.loads(text, object_hook=_checked_node)  # the hook sees every node of the syntax tree
    except RecursionError as exc:
        raise QueryRejected("nested too deeply to check (a few hundred levels at most)") from exc
    if tree.get("error"):
        raise QueryRejected(f"cannot check this SELECT: {tree.get('error_message', 'unknown error')}")


_PLAIN_NAME = re.compile(r"\w+")


def _checked_node(node: dict) -> dict:
    _check_node(node)
    return node


def _check_node(node: dict) -> None:
    if node.get("type") == "SHOW_REF":
        raise QueryRejected("SHOW, DESCRIBE and SUMMARIZE are not available to pack queries (they show settings)")
    if node.get("type") == "BASE_TABLE":
        name = str(node.get("table_name", ""))
        if not _PLAIN_NAME.fullmatch(name):  # `FROM 'path/x.json'` reads a file by its name
            raise QueryRejected(f"reads {name!r}: pack queries read only the trace model's tables and views")
        if (
            name.lower().startswith(_HIDDEN_PREFIXES)
            or str(node.get("schema_name", "")).lower() in _HIDDEN_SCHEMAS
            or str(node.get("catalog_name", "")).lower() in _HIDDEN_CATALOGS
        ):
            raise QueryRejected(f"reads {name}: pack queries read only the trace model's tables and views")
    elif node.get("type") == "TABLE_FUNCTION" and isinstance(node.get("function"), dict):
        name = str(node["function"].get("function_name", ""))
        if name.lower() not in TABLE_FUNCTIONS:
            raise QueryRejected(f"calls {name}(): pack queries may call only {', '.join(sorted(TABLE_FUNCTIONS))}")
    elif node.get("class") == "FUNCTION":
        name = str(node.get("function_name", "")).lower()
        if name in _HIDDEN_FUNCTIONS or name.startswith(_HIDDEN_PREFIXES) or node.get("schema") or node.get("catalog"):
            raise QueryRejected(f"calls {name}(): not available to pack queries (it shows settings or the catalog)")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def _time_limit(con: duckdb.DuckDBPyConnection, limit_s: float) -> Iterator[None]:
    """Interrupt what runs on `con` after `limit_s` seconds; that interruption becomes TimeoutError."""
    timer = threading.Timer(limit_s, con.interrupt)
    timer.start()
    try:
        yield
    except duckdb.InterruptException as exc:
        raise TimeoutError(f"ran past its time limit of {limit_s:g} s") from exc
    finally:
        timer.cancel()


def _execute(con: duckdb.DuckDBPyConnection, sql: str, params: dict, limit_s: float) -> pl.DataFrame:
    """The query's rows; its result may take as much memory as DuckDB may (`memory_limit_bytes()`), no more."""
    cap = memory_limit_bytes()
    with _time_limit(con, limit_s):
        reader = con.sql(sql, params=params or None).to_arrow_reader()
        batches, size = [], 0
        for batch in reader:
            size += batch.nbytes
            if size > cap:
                raise ResultTooLarge(f"its result is larger than {cap} bytes, the memory limit for pack queries")
            batches.append(batch)
    # polars types from_arrow as DataFrame | Series; a Table always gives a DataFrame
    return cast(pl.DataFrame, pl.from_arrow(pa.Table.from_batches(batches, schema=reader.schema)))


def format_message(template: str, row: dict) -> str:
    """Fill `{column}` / `{column:spec}` fields from a result row (no attribute or index access).

    A spec that names a unit, `{gap_ns:ns}`, `{peak_bytes:bytes}`, `{achieved_bytes_per_s:B/s}`, writes the value in
    its human scale (`98.8 ms`, `1.23 GB`, `310 GB/s`: traceview.units). A part in square brackets that holds
    fields, `[ on stream {stream}]`, is left out when one of them is null, and written without its brackets
    otherwise; any other null reads `n/a`.
    """

    def optional(match: re.Match[str]) -> str:
        inner = match.group(1)
        if any(row.get(field.group(1), "") is None for field in _FIELD.finditer(inner)):
            return ""
        return inner

    def fill(match: re.Match[str]) -> str:
        name, spec = match.group(1), match.group(2) or ""
        if name not in row:
            return match.group(0)
        value = row[name]
        if value is None:
            return "n/a"
        if spec in SCALES:
            return human(value, spec)
        if any(int(number) > MAX_FORMAT_NUMBER for number in re.findall(r"\d+", spec)):
            spec = ""  # a width or precision that would take gigabytes
        try:
            return format(value, spec)[:MAX_MESSAGE_CHARS]
        except (TypeError, ValueError, OverflowError):
            return str(value)[:MAX_MESSAGE_CHARS]

    template = _OPTIONAL.sub(optional, template)
    message = _FIELD.sub(fill, template)
    return message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 1] + "…"


def _findings(con: duckdb.DuckDBPyConnection, query: Query, frame: pl.DataFrame, limit_s: float) -> list[Finding]:
    if not query.findings or frame.is_empty():
        return []
    found = []
    con.register("result", frame.to_arrow())
    try:
        for rule in query.findings:
            sql = f"SELECT * FROM result WHERE ({rule.condition})"
            try:
                check_select(con, sql)
                rows = _execute(con, sql, {}, limit_s).to_dicts()
            except (duckdb.Error, QueryRejected, ResultTooLarge) as exc:
                raise RuleFailed(f"{query.path}:{rule.line}: finding condition: {_first_line(exc)}") from exc
            for row in rows:
                found.append(Finding(query.name, rule.severity, format_message(rule.message, row), row))
    finally:
        con.unregister("result")
    return found


def materialize_shared(
    con: duckdb.DuckDBPyConnection, pack: Pack, limit_s: float = DEFAULT_TIME_LIMIT_S
) -> list[SharedResult]:
    """Compute the pack's shared relations into tables; return them in the pack's order.

    Their SQL is the pack's (untrusted) and is checked like a query: a single SELECT, run with
    the sandbox's restrictions; only the `CREATE TABLE` around it is ours. A relation that reads
    another's table is built after it, and not at all when that one failed; the others are built
    two at a time, each on a cursor of `con`.
    """
    return run_pack(con, pack, [], limit_s=limit_s, at_once=_SHARED_AT_ONCE).shared


@dataclass
class PackRun:
    """A pack's shared relations (built, in the pack's order) and query results (in the order asked)."""

    shared: list[SharedResult]
    results: list[QueryResult]


def run_pack(
    con: duckdb.DuckDBPyConnection,
    pack: Pack,
    queries: list[Query],
    overrides: dict[str, object] | None = None,
    limit_s: float = DEFAULT_TIME_LIMIT_S,
    at_once: int = QUERIES_AT_ONCE,
) -> PackRun:
    """Build `pack`'s shared relations and run `queries`, `at_once` at a time, each on a cursor of `con`.

    A relation starts once the relations it reads are built (never, if one failed); a query starts
    once those it includes are settled, and reads the built ones from their tables (it computes a
    failed one itself). So queries that need no relation, or only early ones, run while the later
    relations are still being built. Relations go first whenever both are ready (they unblock
    others), then the queries that include the most relations. The tables stay until `drop_shared`.
    """
    shared_needs = _relation_needs(pack)
    query_needs = [{r.name for r in pack.shared if r.definition in query.sql} for query in queries]
    # The queries that wait for the most relations become ready last, on the critical path: they go first.
    by_needs = sorted(range(len(queries)), key=lambda index: (-len(query_needs[index]), index))
    # A relation whose build reads itself through others can never start: it fails at once.
    built: dict[str, SharedResult] = {
        relation.name: SharedResult(relation, None, 0.0, f"{relation.name}: reads itself through {sorted(cycle)}")
        for relation in pack.shared
        if (cycle := _cycle_through(relation.name, shared_needs))
    }
    results: dict[int, QueryResult] = {}

    def blocked(name: str) -> bool:
        """The relation cannot be built: something it reads failed or cannot be built."""
        return any((n in built and built[n].error is not None) or blocked(n) for n in shared_needs[name])

    def settled(name: str) -> bool:
        return name in built or blocked(name)

    def usable(name: str) -> bool:
        return name in built and built[name].error is None

    def run(index: int) -> QueryResult:
        relations = [r for r in pack.shared if r.name in query_needs[index] and usable(r.name)]
        with con.cursor() as cursor:
            return run_query(cursor, queries[index], overrides, limit_s, relations)

    with ThreadPoolExecutor(max_workers=max(1, at_once)) as pool:
        building: dict[Future[SharedResult], str] = {}
        querying: dict[Future[QueryResult], int] = {}
        waiting_relations = list(pack.shared)
        waiting_queries = list(by_needs)
        while True:
            for relation in list(waiting_relations):
                if relation.name in built:
                    waiting_relations.remove(relation)
                elif len(building) + len(querying) < at_once and all(usable(n) for n in shared_needs[relation.name]):
                    waiting_relations.remove(relation)
                    building[pool.submit(_build_shared, con, relation, limit_s)] = relation.name
            for index in list(waiting_queries):
                if len(building) + len(querying) < at_once and all(settled(n) for n in query_needs[index]):
                    waiting_queries.remove(index)
                    querying[pool.submit(run, index)] = index
            if not building and not querying:
                break
            pending: list[Future[Any]] = [*building, *querying]
            wait(pending, return_when=FIRST_COMPLETED)
            for finished_build in [f for f in building if f.done()]:
                built[building.pop(finished_build)] = finished_build.result()
            for finished_query in [f for f in querying if f.done()]:
                results[querying.pop(finished_query)] = finished_query.result()
    return PackRun(
        shared=[built[r.name] for r in pack.shared if r.name in built],
        results=[results[i] for i in range(len(queries))],
    )


def _relation_needs(pack: Pack) -> dict[str, set[str]]:
    """For each shared relation, the relations whose tables its build SQL reads."""
    return {
        relation.name: {
            other.name
            for other in pack.shared
            if other is not relation and re.search(rf"\b{re.escape(other.table)}\b", relation.build_sql)
        }
        for relation in pack.shared
    }


def _cycle_through(name: str, needs: dict[str, set[str]]) -> set[str]:
    """The relations on a path from `name` back to itself (empty when there is none); no recursion."""
    stack = [(name, frozenset([name]))]
    seen: set[str] = set()
    while stack:
        current, path = stack.pop()
        for other in needs.get(current, ()):
            if other == name:
                return set(path)
            if other not in seen:
                seen.add(other)
                stack.append((other, path | {other}))
    return set()


def _build_shared(con: duckdb.DuckDBPyConnection, relation: SharedRelation, limit_s: float) -> SharedResult:
    start = time.perf_counter()
    table = _quoted(relation.table)
    with con.cursor() as cursor:
        try:
            check_select(cursor, relation.build_sql)
            # a table of the database, not a TEMP one: queries run on cursors, which see the former only
            create = f"CREATE OR REPLACE TABLE {table} AS\n{relation.build_sql}"
            statements = cursor.extract_statements(create)
            if len(statements) != 1 or statements[0].type != duckdb.StatementType.CREATE:
                raise QueryRejected("the relation's SQL does not stay inside its CREATE TABLE")
            with _time_limit(cursor, limit_s):
                cursor.execute(create)
            rows = int(cursor.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
            return SharedResult(relation, rows, time.perf_counter() - start)
        except (duckdb.Error, QueryRejected, TimeoutError) as exc:
            return SharedResult(relation, None, time.perf_counter() - start, f"{relation.name}: {_first_line(exc)}")


def drop_shared(con: duckdb.DuckDBPyConnection, results: list[SharedResult]) -> None:
    """Drop the tables `materialize_shared` made."""
    for result in results:
        con.execute(f"DROP TABLE IF EXISTS {_quoted(result.relation.table)}")


def _quoted(name: str) -> str:
    """A validated name as a quoted SQL identifier."""
    if not IDENTIFIER.match(name):
        raise ValueError(f"not a name: {name!r}")
    return f'"{name}"'


def run_query(
    con: duckdb.DuckDBPyConnection,
    query: Query,
    overrides: dict[str, object] | None = None,
    limit_s: float = DEFAULT_TIME_LIMIT_S,
    shared: list[SharedRelation] | None = None,
) -> QueryResult:
    """Run one pack query in the sandbox; errors are captured, never raised.

    With `shared` (relations already in their tables), the query reads those tables instead of
    computing the same CTEs again; should that fail other than by its time limit, it runs again
    as written, so the result and any error are those of the query itself.
    """
    if query.problem:
        return QueryResult(query, None, error=query.problem)
    sql = with_shared(query.sql, shared or [])
    if sql != query.sql:
        result = _run(con, query, sql, overrides, limit_s)
        if result.error is None or result.timed_out:
            return result
    return _run(con, query, query.sql, overrides, limit_s)


def _run(
    con: duckdb.DuckDBPyConnection, query: Query, sql: str, overrides: dict[str, object] | None, limit_s: float
) -> QueryResult:
    start = time.perf_counter()
    try:
        check_select(con, sql)
        frame = _execute(con, sql, query.bind(overrides), limit_s)
        try:
            findings = _findings(con, query, frame, limit_s)
        except RuleFailed as exc:
            return QueryResult(query, frame, [], error=str(exc), seconds=time.perf_counter() - start)
        return QueryResult(query, frame, findings, seconds=time.perf_counter() - start)
    except PackError as exc:  # it names the file already
        return QueryResult(query, None, error=str(exc), seconds=time.perf_counter() - start)
    except (duckdb.Error, QueryRejected, ResultTooLarge, TimeoutError, ValueError, OverflowError) as exc:
        message = _first_line(exc)
        blamed = _LINE.search(str(exc))
        return QueryResult(
            query,
            None,
            error=f"{query.path}: {message}",
            seconds=time.perf_counter() - start,
            error_sql_line=int(blamed.group(1)) if blamed else None,
            timed_out=isinstance(exc, TimeoutError),
        )


def with_findings(
    con: duckdb.DuckDBPyConnection, query: Query, frame: pl.DataFrame, limit_s: float, seconds: float = 0.0
) -> QueryResult:
    """The result of `query` whose rows were computed elsewhere (per rank, gathered): its findings added here."""
    try:
        return QueryResult(query, frame, _findings(con, query, frame, limit_s), seconds=seconds)
    except RuleFailed as exc:
        return QueryResult(query, frame, [], error=str(exc), seconds=seconds)


def rule_check(con: duckdb.DuckDBPyConnection, query: Query, frame: pl.DataFrame, rule: FindingRule) -> str | None:
    """Check that a finding rule's condition binds against a result; return the error or None."""
    con.register("result", frame.to_arrow())
    try:
        sql = f"SELECT * FROM result WHERE ({rule.condition})"
        check_select(con, sql)
        con.sql(sql).fetchall()
        return None
    except (duckdb.Error, QueryRejected) as exc:
        return f"{query.path}:{rule.line}: finding condition: {_first_line(exc)}"
    finally:
        con.unregister("result")
