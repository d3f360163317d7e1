"""Query packs: directories of `.sql` files, each one query with an optional comment header.

A header is the run of leading `-- key: value` lines:

    -- title: Kernel hotspots
    -- description: Kernels by total device time.
    -- param: top INTEGER 20 How many rows to keep
    -- finding: share > 0.5 => warning: {name} takes {share:.0%} of device time
    -- units: total_ns=ns, first=ts, bytes=bytes, bw=B/s, share=% of device busy time
    -- order: total_ns desc
    -- empty: no kernels: a CPU-only trace
    -- evidence: total_ns, bytes

`param` lines give a name, a DuckDB type, a default and a description; the query refers to
the value as `$name` (bound, never pasted). `finding` lines give a SQL condition over the
result's columns, a severity (info, warning, critical) and a message whose `{column}` fields
are filled from each matching row; a part in square brackets with fields in it, `[ step {step}]`,
is left out when one of them is null. A file without a header is a query named after its file.

The other keys tell the reports how to show the result (the JSON report keeps the raw values):
`units` gives columns their unit (`ns`, `ts` (a time stamp, shown from the trace start), `bytes`,
`B/s`, `%` (say its denominator, without commas: `% of device busy time`); columns without one
get it from their name's suffix: `*ts_ns` ts, `*_ns` ns, `*bytes` bytes,
`*_bytes_per_s` B/s, `*_pct` %); `order` the columns (each `asc` or `desc`, default desc) that
rank rows by impact; `empty` one line saying why the result can be empty; `evidence` the columns of
which a row needs one non-null to say anything (rows without are not shown).

`scope` says where a query can run on a cluster (`analyze --ray`): `rank` when each trace's rows come from that
trace alone (it groups by trace_id, reads nothing across traces, and orders by trace_id first), so it runs per
rank and the ranks' rows, in trace_id order, are its result; `cluster` (the default) when it reads several
traces at once: it runs on the driver over the whole store.

Files whose names start with `_` are fragments shared by several queries of the pack: a line
`-- @include _fragment.sql` in a query's SQL is replaced by the fragment's text. A fragment is a
list of CTEs (`name AS (` at the start of a line, closed by `)` at the start of a line); its
header may name some of them in `-- materialize: a, b`: when the whole pack runs, each of
those is computed once into a temporary table, and the queries that include the fragment read
that table instead of computing the CTE again (their SQL is otherwise unchanged, so a query run
alone gives the same rows).

Packs come from the internet, so loading one is bounded (see `PackLimits`): only regular files
of at most `max_file_bytes`, UTF-8 text; includes nested at most `max_include_depth` deep,
without cycles, and a query at most `max_sql_chars` long with its includes. A file that breaks a
rule becomes a one-line problem (`Query.problem`, `Pack.problems`) and the others still load.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

from traceview.errors import UserError
from traceview.parsers.filekind import FileTooLarge, NotRegularFile, read_regular

SEVERITIES = ("info", "warning", "critical")
UNITS = ("ns", "ts", "bytes", "B/s", "%")
SCOPES = ("rank", "cluster")
PARAM_TYPES = {"INTEGER": int, "BIGINT": int, "DOUBLE": float, "VARCHAR": str, "BOOLEAN": bool}
_HEADER_LINE = re.compile(r"^--\s*([A-Za-z_]+)\s*:\s*(.*?)\s*$")
_PARAM = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s+([A-Za-z]+)\s+(\S+)\s*(.*)$")
_FINDING = re.compile(r"^(.+?)\s*=>\s*([a-z]+)\s*:\s*(.+)$")
_PARAM_USE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_INCLUDE = re.compile(r"^\s*--\s*@include\s+(\S+)\s*$")
_MATERIALIZE = re.compile(r"^--\s*materialize\s*:\s*(.*?)\s*$", re.IGNORECASE)
_CTE_END = re.compile(r"^\),?\s*$")
_UNIT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(ns|ts|bytes|B/s|%)(?:\s+of\s+(\S.*))?$")
_UNIT_SUFFIXES = (("ts_ns", "ts"), ("_ns", "ns"), ("bytes_per_s", "B/s"), ("bytes", "bytes"), ("_pct", "%"))
_ORDER = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\s+(asc|desc))?$", re.IGNORECASE)
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
INT_RANGES = {"INTEGER": (-(2**31), 2**31 - 1), "BIGINT": (-(2**63), 2**63 - 1)}
TOML_TEXT_FIELDS = ("name", "version", "description")


@dataclass(frozen=True)
class PackLimits:
    """Bounds on what loading one (untrusted) pack may cost; `set_pack_limits` raises them."""

    max_file_bytes: int = 1 << 20  # one .sql file or pack.toml (the core pack's largest is 24 kB)
    max_files: int = 1000  # .sql files in a pack directory
    max_include_depth: int = 5  # fragments including fragments
    max_sql_chars: int = 4 << 20  # one query's SQL once its includes are expanded
    max_message_chars: int = 1000  # a finding's message template
    max_toml_text_chars: int = 1000  # pack.toml's name, version and description


_limits = PackLimits()


def pack_limits() -> PackLimits:
    """The pack limits in force."""
    return _limits


def set_pack_limits(**changes: int) -> PackLimits:
    """Change some pack limits for this process; return the new ones."""
    global _limits
    _limits = replace(_limits, **changes)
    return _limits


class PackError(UserError):
    """A pack or query file is malformed; the message names the file and line."""


def read_pack_text(path: Path, pack_dir: Path | None = None) -> str:
    """The text of a pack file: a regular file (not a FIFO, device or directory) within the size
    limit, UTF-8 (a BOM is allowed), without NUL bytes; a link must stay inside `pack_dir`."""
    limit = pack_limits().max_file_bytes
    if pack_dir is not None and path.is_symlink() and not path.resolve().is_relative_to(pack_dir.resolve()):
        raise PackError(f"{path}: a link out of the pack directory")
    try:
        data = read_regular(path, limit)
    except NotRegularFile:
        raise PackError(f"{path}: not a regular file") from None
    except FileTooLarge:
        raise PackError(f"{path}: larger than {limit} bytes, the limit for a pack file") from None
    except OSError as exc:
        raise PackError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PackError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if "\0" in text:
        raise PackError(f"{path}: not UTF-8 text (it holds NUL bytes; UTF-16?)")
    return text


@dataclass(frozen=True)
class Param:
    """A query parameter with its type and default."""

    name: str
    type: str
    default: object
    description: str = ""

    def parse(self, text: str) -> object:
        """Convert a value given as text (e.g. on the command line) to this parameter's type."""
        return _convert(self.type, text)


@dataclass(frozen=True)
class FindingRule:
    """A condition on a query's result rows, with the finding it raises."""

    condition: str
    severity: str
    message: str
    line: int


@dataclass(frozen=True)
class Unit:
    """How a result column is shown: its unit (one of UNITS) and, for a share, what it is a share of."""

    unit: str
    of: str = ""

    def __str__(self) -> str:
        return f"{self.unit} of {self.of}" if self.of else self.unit


@dataclass(frozen=True)
class Presentation:
    """The `units`, `order`, `empty` and `evidence` header lines of a query: how the reports show it."""

    units: dict[str, Unit] = field(default_factory=dict)
    order: tuple[tuple[str, bool], ...] = ()  # (column, descending), most significant first
    empty: str = ""
    evidence: tuple[str, ...] = ()

    def units_of(self, columns: list[str]) -> dict[str, Unit]:
        """The unit of each of `columns` that has one: declared, else from the column's name."""
        found = {name: self.units.get(name) or inferred_unit(name) for name in columns}
        return {name: unit for name, unit in found.items() if unit is not None}


def inferred_unit(column: str) -> Unit | None:
    """The unit a column's name implies (`*ts_ns` ts, `*_ns` ns, `*_bytes_per_s` B/s, `*bytes` bytes, `*_pct` %)."""
    for suffix, unit in _UNIT_SUFFIXES:
        if column.endswith(suffix):
            return Unit(unit)
    return None


@dataclass
class Query:
    """One query of a pack."""

    name: str
    path: Path
    sql: str
    title: str
    description: str = ""
    params: list[Param] = field(default_factory=list)
    findings: list[FindingRule] = field(default_factory=list)
    header: dict[str, str] = field(default_factory=dict)
    sql_line: int = 1  # line of the file where the SQL starts
    line_map: list[tuple[Path, int]] = field(default_factory=list)  # SQL line -> (file, line)
    problem: str | None = None  # why the file could not be loaded (`file[:line]: message`); then no SQL
    presentation: Presentation = field(default_factory=Presentation)
    scope: str = "cluster"  # `rank`: runs per trace, its rows in trace_id order are the result (see the module doc)

    def source_of(self, sql_line: int) -> tuple[Path, int]:
        """The file and line a line of the (expanded) SQL came from; 1-based."""
        if 1 <= sql_line <= len(self.line_map):
            return self.line_map[sql_line - 1]
        return self.path, self.sql_line + sql_line - 1

    def bind(self, overrides: dict[str, object] | None = None) -> dict[str, object]:
        """The parameter values this query's SQL uses: defaults, then overrides."""
        used = set(_PARAM_USE.findall(self.sql))
        values = {p.name: p.default for p in self.params}
        for name, value in (overrides or {}).items():
            if name in values:
                param = next(p for p in self.params if p.name == name)
                values[name] = param.parse(value) if isinstance(value, str) else value
        missing = used - set(values)
        if missing:
            raise PackError(f"{self.path}: uses ${', $'.join(sorted(missing))} but declares no such param")
        return {name: value for name, value in values.items() if name in used}


@dataclass(frozen=True)
class SharedRelation:
    """A fragment CTE that a pack run computes once (named in the fragment's `-- materialize:`)."""

    name: str
    table: str  # the temporary table holding it during a pack run
    definition: str  # the CTE's text, as it appears in the SQL of the queries that include it
    build_sql: str  # a SELECT computing it (earlier shared relations read from their tables)
    fragment: Path  # the file that defines it

    def __post_init__(self) -> None:
        if not (IDENTIFIER.match(self.name) and IDENTIFIER.match(self.table)):
            raise PackError(f"{self.fragment}: materialize {self.name!r}: not a name (letters, digits, _)")

    def reference(self) -> str:
        """The CTE that replaces `definition` once the table exists."""
        return f'{self.name} AS (SELECT * FROM "{self.table}")'


def with_shared(sql: str, shared: list[SharedRelation]) -> str:
    """`sql` with the definitions of the `shared` relations replaced by reads of their tables."""
    for relation in shared:
        sql = sql.replace(relation.definition, relation.reference())
    return sql


@dataclass
class Pack:
    """A directory of queries plus its optional pack.toml."""

    name: str
    path: Path
    version: str = ""
    description: str = ""
    queries: list[Query] = field(default_factory=list)
    shared: list[SharedRelation] = field(default_factory=list)  # in the order they are built
    problems: list[str] = field(default_factory=list)  # pack.toml or fragments: `file[:line]: message`

    def query(self, name: str) -> Query:
        """The query called `name`."""
        for query in self.queries:
            if query.name == name:
                return query
        raise UserError(f"{self.path}: pack {self.name!r} has no query {name!r}")


def needed_by(pack: Pack, queries: list[Query], relations: tuple[str, ...] = ()) -> Pack:
    """`pack` cut down to `queries`, the shared relations they include (an included fragment brings the definitions
    of the relations it reads) and the named `relations`, each with the relations its build reads."""
    wanted = {r.name for r in pack.shared if r.name in relations or any(r.definition in q.sql for q in queries)}
    for relation in reversed(pack.shared):  # a relation's build reads only relations before it
        if relation.name in wanted:
            wanted |= {o.name for o in pack.shared if re.search(rf"\b{re.escape(o.table)}\b", relation.build_sql)}
    return replace(pack, queries=queries, shared=[r for r in pack.shared if r.name in wanted])


def _convert(type_name: str, text: str) -> object:
    kind = PARAM_TYPES[type_name]
    if kind is bool:
        lowered = text.lower()
        if lowered not in ("true", "false", "1", "0"):
            raise ValueError(f"not a boolean: {text!r}")
        return lowered in ("true", "1")
    if kind is str:
        return text.strip('"')
    value = kind(text)
    if type_name in INT_RANGES:
        low, high = INT_RANGES[type_name]
        if not low <= value <= high:
            raise ValueError(f"{value} is out of the range of {type_name}")
    return value


def parse_query(path: Path, text: str | None = None) -> Query:
    """Parse one `.sql` file: its header and its SQL."""
    text = read_pack_text(path, path.parent) if text is None else text
    header: dict[str, str] = {}
    params: list[Param] = []
    findings: list[FindingRule] = []
    shown = Presentation()
    lines = text.splitlines()
    body_start = 0
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped:
            body_start = number
            continue
        if not stripped.startswith("--") or _INCLUDE.match(stripped):
            break  # an include ends the header: it is part of the SQL
        body_start = number
        match = _HEADER_LINE.match(stripped)
        if not match:
            continue  # a plain comment
        key, value = match.group(1).lower(), match.group(2)
        if key == "param":
            params.append(_parse_param(path, number, value))
        elif key == "finding":
            findings.append(_parse_finding(path, number, value))
        elif key in PRESENTATION_KEYS:
            shown = _parse_presentation(path, number, key, value, shown)
        elif key == "scope" and value not in SCOPES:
            raise PackError(f"{path}:{number}: scope: {value!r} is not one of {', '.join(SCOPES)}")
        else:
            header[key] = value
    body = lines[body_start:]
    while body and not body[0].strip():
        body = body[1:]
        body_start += 1
    numbered = [(line, path, body_start + i + 1) for i, line in enumerate(body)]
    expanded = _Includes(path.parent).expand(numbered, (path.name,))
    while expanded and not expanded[-1][0].strip():
        expanded.pop()
    sql = "\n".join(line for line, _, _ in expanded).strip().rstrip(";").strip()
    if not sql:
        raise PackError(f"{path}:1: no SQL after the header")
    name = path.stem
    return Query(
        name=name,
        path=path,
        sql=sql,
        title=header.get("title", name.replace("_", " ")),
        description=header.get("description", ""),
        params=params,
        findings=findings,
        header=header,
        sql_line=body_start + 1,
        line_map=[(file, number) for _, file, number in expanded],
        presentation=shown,
        scope=header.get("scope", "cluster"),
    )


class _Includes:
    """Expands `-- @include` lines within the pack's limits, reading each fragment once."""

    def __init__(self, pack_dir: Path) -> None:
        self.pack_dir = pack_dir
        self.chars_left = pack_limits().max_sql_chars
        self.fragments: dict[str, tuple[Path, list[str]]] = {}  # by name as written

    def expand(self, lines: list[tuple[str, Path, int]], chain: tuple[str, ...]) -> list[tuple[str, Path, int]]:
        """`lines` with includes replaced by the fragments' lines, remembering where each came from;
        `chain` names the files that include these lines, outermost first."""
        out: list[tuple[str, Path, int]] = []
        for text, file, number in lines:
            self.chars_left -= len(text) + 1  # an include line too: else empty fragments would expand for free
            if self.chars_left < 0:
                limit = pack_limits().max_sql_chars
                raise PackError(f"{file}:{number}: the SQL with its includes is longer than {limit} characters")
            match = _INCLUDE.match(text)
            if not match:
                out.append((text, file, number))
                continue
            name = match.group(1)
            if name in chain:
                cycle = " -> ".join((*chain[chain.index(name) :], name))
                raise PackError(f"{file}:{number}: include cycle: {cycle}")
            if len(chain) > pack_limits().max_include_depth:
                raise PackError(f"{file}:{number}: includes nested deeper than {pack_limits().max_include_depth}")
            fragment, fragment_lines = self._fragment(name, file, number)
            numbered = [(line, fragment, i + 1) for i, line in enumerate(fragment_lines)]
            out += self.expand(numbered, (*chain, name))
        return out

    def _fragment(self, name: str, file: Path, number: int) -> tuple[Path, list[str]]:
        if name not in self.fragments:
            fragment = self.pack_dir / name
            if not name.startswith("_") or "/" in name or "\\" in name or not fragment.exists():
                raise PackError(f"{file}:{number}: include {name!r}: no fragment file _*.sql of that name in the pack")
            self.fragments[name] = (fragment, read_pack_text(fragment, self.pack_dir).splitlines())
        return self.fragments[name]


def _parse_param(path: Path, line: int, value: str) -> Param:
    match = _PARAM.match(value)
    if not match:
        raise PackError(f"{path}:{line}: param needs 'NAME TYPE DEFAULT [description]', got {value!r}")
    name, type_name, default, description = match.groups()
    type_name = type_name.upper()
    if type_name not in PARAM_TYPES:
        raise PackError(f"{path}:{line}: param {name} has unknown type {type_name} (use {', '.join(PARAM_TYPES)})")
    try:
        converted = _convert(type_name, default)
    except ValueError as exc:
        raise PackError(f"{path}:{line}: param {name} default {default!r} is not {type_name} ({exc})") from exc
    return Param(name, type_name, converted, description)


def _parse_finding(path: Path, line: int, value: str) -> FindingRule:
    match = _FINDING.match(value)
    if not match:
        raise PackError(f"{path}:{line}: finding needs 'CONDITION => SEVERITY: MESSAGE', got {value!r}")
    condition, severity, message = match.groups()
    if len(message) > pack_limits().max_message_chars:
        raise PackError(f"{path}:{line}: finding message longer than {pack_limits().max_message_chars} characters")
    if severity not in SEVERITIES:
        raise PackError(f"{path}:{line}: finding severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    return FindingRule(condition, severity, message, line)


PRESENTATION_KEYS = ("units", "order", "empty", "evidence")


def _parse_presentation(path: Path, line: int, key: str, value: str, shown: Presentation) -> Presentation:
    """`shown` with one `units`/`order`/`empty`/`evidence` header line added (units lines add up)."""
    if len(value) > pack_limits().max_message_chars:
        raise PackError(f"{path}:{line}: {key} longer than {pack_limits().max_message_chars} characters")
    if key == "empty":
        return replace(shown, empty=value)
    if key == "order":
        keys = []
        for part in value.split(","):
            match = _ORDER.match(part.strip())
            if not match:
                raise PackError(f"{path}:{line}: order needs 'COLUMN [asc|desc][, ...]', got {value!r}")
            keys.append((match.group(1), (match.group(2) or "desc").lower() == "desc"))
        return replace(shown, order=tuple(keys))
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if key == "evidence":
        bad = [part for part in parts if not IDENTIFIER.match(part)]
        if bad:
            raise PackError(f"{path}:{line}: evidence {bad[0]!r}: not a column name")
        return replace(shown, evidence=shown.evidence + tuple(parts))
    units = dict(shown.units)
    for part in parts:
        match = _UNIT.match(part)
        if not match:
            choices = ", ".join(UNITS)
            raise PackError(f"{path}:{line}: units needs 'COLUMN=UNIT' with UNIT one of {choices}, got {part!r}")
        units[match.group(1)] = Unit(match.group(2), match.group(3) or "")
    return replace(shown, units=units)


def load_pack(path: Path) -> Pack:
    """Load a pack directory; a file that cannot be loaded becomes a problem, not an error."""
    if not path.is_dir():
        raise PackError(f"{path}: not a directory of .sql files")
    problems: list[str] = []
    meta = _pack_meta(path / "pack.toml", problems)
    files = sorted(p for p in path.glob("*.sql") if not p.name.startswith("_"))
    if not files:
        raise PackError(f"{path}: no .sql files")
    if len(files) > pack_limits().max_files:
        raise PackError(f"{path}: more than {pack_limits().max_files} .sql files")
    return Pack(
        name=meta.get("name", path.name),
        path=path,
        version=meta.get("version", ""),
        description=meta.get("description", ""),
        queries=[_load_query(file) for file in files],
        shared=_shared_relations(path, problems),
        problems=problems,
    )


def _load_query(path: Path) -> Query:
    """The query in `path`, or a query that only carries the reason it could not be loaded."""
    try:
        return parse_query(path)
    except PackError as exc:
        problem = str(exc) if str(exc).startswith(f"{path}:") else f"{exc} (included by {path.name})"
        return Query(name=path.stem, path=path, sql="", title=path.stem, problem=problem)


def _pack_meta(toml_path: Path, problems: list[str]) -> dict[str, str]:
    """pack.toml's name, version and description (short texts); the others are left at their defaults."""
    if not toml_path.exists() and not toml_path.is_symlink():
        return {}
    try:
        meta = tomllib.loads(read_pack_text(toml_path, toml_path.parent))
    except PackError as exc:
        problems.append(str(exc))
        return {}
    except (tomllib.TOMLDecodeError, RecursionError) as exc:
        problems.append(f"{toml_path}: not TOML: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        return {}
    found = {}
    for key in TOML_TEXT_FIELDS:
        value = meta.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            problems.append(f"{toml_path}: {key} must be a string, not {type(value).__name__}")
        elif len(str(value)) > pack_limits().max_toml_text_chars:
            problems.append(f"{toml_path}: {key} longer than {pack_limits().max_toml_text_chars} characters")
        else:
            found[key] = str(value)
    return found


def _shared_relations(pack_dir: Path, problems: list[str]) -> list[SharedRelation]:
    """The `-- materialize:` CTEs of the pack's fragments, each after those it may depend on.

    A fragment that cannot be read or names a relation wrongly adds a problem and shares nothing.
    """
    shared: list[SharedRelation] = []
    seen: set[Path] = set()

    def visit(fragment: Path, depth: int = 0) -> None:
        if fragment in seen or depth > pack_limits().max_include_depth:
            return
        seen.add(fragment)
        lines = read_pack_text(fragment, pack_dir).splitlines()
        for line in lines:  # included fragments first: their relations may be used here
            if (match := _INCLUDE.match(line)) and match.group(1).startswith("_") and "/" not in match.group(1):
                if (pack_dir / match.group(1)).is_file():
                    try:
                        visit(pack_dir / match.group(1), depth + 1)
                    except PackError as exc:
                        problems.append(str(exc))
        wanted = _materialized_names(fragment, lines)
        if not wanted:
            return
        numbered = [(text, fragment, i + 1) for i, text in enumerate(lines)]
        expanded = [text for text, _, _ in _Includes(pack_dir).expand(numbered, (fragment.name,))]
        found = []
        for name, number in wanted.items():
            definition = _cte_definition(expanded, name)
            if definition is None:
                raise PackError(
                    f"{fragment}:{number}: materialize {name}: no CTE `{name} AS (` ... `)` at the start of a line"
                )
            if _PARAM_USE.search(definition):
                raise PackError(f"{fragment}:{number}: materialize {name}: uses a $parameter (they are per query)")
            found.append((expanded.index(definition.splitlines()[0]), name, definition))
        taken = {relation.name for relation in shared}
        for position, name, definition in sorted(found):
            if name in taken:
                problems.append(f"{fragment}:{wanted[name]}: materialize {name}: already named by another fragment")
                continue
            # A CTE reads only the CTEs before it: the SQL that builds it stops at its own definition, so
            # it holds (and waits for) none of the shared relations after it.
            head = "\n".join(expanded[:position])
            select = f"WITH RECURSIVE\n{head}\n{definition}\nSELECT * FROM {name}"
            shared.append(SharedRelation(name, f"_shared_{name}", definition, with_shared(select, shared), fragment))

    for fragment in sorted(pack_dir.glob("_*.sql")):
        try:
            visit(fragment)
        except PackError as exc:
            problems.append(str(exc))
    return shared


def _materialized_names(fragment: Path, lines: list[str]) -> dict[str, int]:
    """The names in the header's `-- materialize:` lines, with their line; each must be an identifier."""
    wanted: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip().startswith("--"):
            break
        if match := _MATERIALIZE.match(line.strip()):
            for name in (part.strip() for part in match.group(1).split(",")):
                if name and not IDENTIFIER.match(name):
                    raise PackError(f"{fragment}:{number}: materialize {name!r}: not a name (letters, digits, _)")
                if name:
                    wanted[name] = number
    return wanted


def _cte_definition(lines: list[str], name: str) -> str | None:
    """The text of CTE `name` in a fragment's lines: from `name AS (` to its closing `)` line."""
    opening = re.compile(rf"^{re.escape(name)}\s+AS\s*\($", re.IGNORECASE)
    for start, line in enumerate(lines):
        if opening.match(line.rstrip()):
            for end in range(start + 1, len(lines)):
                if _CTE_END.match(lines[end]):
                    return "\n".join(lines[start:end]) + "\n)"
            return None
    return None


def fragment_sql(pack: Pack, name: str) -> str:
    """A pack fragment's SQL without its comment lines (e.g. the core pack's `_family_rules.sql`)."""
    text = read_pack_text(pack.path / name, pack.path)
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--")).strip()


def builtin_pack_dirs() -> list[Path]:
    """The packs shipped in the `queries` package."""
    root = Path(str(resources.files("traceview.queries")))
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / "pack.toml").is_file())


def builtin_packs() -> list[Pack]:
    """Load every built-in pack."""
    return [load_pack(p) for p in builtin_pack_dirs()]


def find_pack(name_or_path: str) -> Pack:
    """A built-in pack by name, or a pack directory by path."""
    for pack in builtin_packs():
        if pack.name == name_or_path:
            return pack
    path = Path(name_or_path)
    if path.is_dir():
        return load_pack(path)
    names = ", ".join(p.name for p in builtin_packs())
    raise UserError(f"{name_or_path}: no such pack (built-in packs: {names})")
