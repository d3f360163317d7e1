"""Query packs: directories of `.sql` files, each one query with an optional comment header.

A header is the run of leading `-- key: value` lines:

    -- title: Kernel hotspots
    -- description: Kernels by total device time.
    -- param: top INTEGER 20 How many rows to keep
    -- finding: share > 0.5 => warning: {name} takes {share:.0%} of device time

`param` lines give a name, a DuckDB type, a default and a description; the query refers to
the value as `$name` (bound, never pasted). `finding` lines give a SQL condition over the
result's columns, a severity (info, warning, critical) and a message whose `{column}` fields
are filled from each matching row. A file without a header is a query named after its file.

Files whose names start with `_` are fragments shared by several queries of the pack: a line
`-- @include _fragment.sql` in a query's SQL is replaced by the fragment's text.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from traceview.errors import UserError

SEVERITIES = ("info", "warning", "critical")
PARAM_TYPES = {"INTEGER": int, "BIGINT": int, "DOUBLE": float, "VARCHAR": str, "BOOLEAN": bool}
_HEADER_LINE = re.compile(r"^--\s*([A-Za-z_]+)\s*:\s*(.*?)\s*$")
_PARAM = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s+([A-Za-z]+)\s+(\S+)\s*(.*)$")
_FINDING = re.compile(r"^(.+?)\s*=>\s*([a-z]+)\s*:\s*(.+)$")
_PARAM_USE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_INCLUDE = re.compile(r"^\s*--\s*@include\s+(\S+)\s*$")


class PackError(UserError):
    """A pack or query file is malformed; the message names the file and line."""


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


@dataclass
class Pack:
    """A directory of queries plus its optional pack.toml."""

    name: str
    path: Path
    version: str = ""
    description: str = ""
    queries: list[Query] = field(default_factory=list)

    def query(self, name: str) -> Query:
        """The query called `name`."""
        for query in self.queries:
            if query.name == name:
                return query
        raise UserError(f"{self.path}: pack {self.name!r} has no query {name!r}")


def _convert(type_name: str, text: str) -> object:
    kind = PARAM_TYPES[type_name]
    if kind is bool:
        lowered = text.lower()
        if lowered not in ("true", "false", "1", "0"):
            raise ValueError(f"not a boolean: {text!r}")
        return lowered in ("true", "1")
    if kind is str:
        return text.strip('"')
    return kind(text)


def parse_query(path: Path, text: str | None = None) -> Query:
    """Parse one `.sql` file: its header and its SQL."""
    text = path.read_text(encoding="utf-8") if text is None else text
    header: dict[str, str] = {}
    params: list[Param] = []
    findings: list[FindingRule] = []
    lines = text.splitlines()
    body_start = 0
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped:
            body_start = number
            continue
        if not stripped.startswith("--"):
            break
        body_start = number
        match = _HEADER_LINE.match(stripped)
        if not match:
            continue  # a plain comment
        key, value = match.group(1).lower(), match.group(2)
        if key == "param":
            params.append(_parse_param(path, number, value))
        elif key == "finding":
            findings.append(_parse_finding(path, number, value))
        else:
            header[key] = value
    body = lines[body_start:]
    while body and not body[0].strip():
        body = body[1:]
        body_start += 1
    expanded = _expand_includes(path, [(line, path, body_start + i + 1) for i, line in enumerate(body)])
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
    )


def _expand_includes(path: Path, lines: list[tuple[str, Path, int]], depth: int = 0) -> list[tuple[str, Path, int]]:
    """Replace `-- @include _name.sql` lines by the fragment's lines, remembering where each came from."""
    out: list[tuple[str, Path, int]] = []
    for text, file, number in lines:
        match = _INCLUDE.match(text)
        if not match:
            out.append((text, file, number))
            continue
        name = match.group(1)
        fragment = path.parent / name
        if not name.startswith("_") or "/" in name or not fragment.is_file():
            raise PackError(f"{file}:{number}: include {name!r}: no fragment file _*.sql of that name in the pack")
        if depth > 4:
            raise PackError(f"{file}:{number}: includes nested too deeply")
        fragment_lines = fragment.read_text(encoding="utf-8").splitlines()
        out += _expand_includes(
            path, [(line, fragment, i + 1) for i, line in enumerate(fragment_lines)], depth + 1
        )
    return out


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
    if severity not in SEVERITIES:
        raise PackError(f"{path}:{line}: finding severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    return FindingRule(condition, severity, message, line)


def load_pack(path: Path) -> Pack:
    """Load a pack directory."""
    if not path.is_dir():
        raise PackError(f"{path}: not a directory of .sql files")
    meta: dict = {}
    toml_path = path / "pack.toml"
    if toml_path.is_file():
        try:
            meta = tomllib.loads(toml_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise PackError(f"{toml_path}: {exc}") from exc
    files = sorted(p for p in path.glob("*.sql") if not p.name.startswith("_"))
    if not files:
        raise PackError(f"{path}: no .sql files")
    return Pack(
        name=str(meta.get("name", path.name)),
        path=path,
        version=str(meta.get("version", "")),
        description=str(meta.get("description", "")),
        queries=[parse_query(file) for file in files],
    )


def fragment_sql(pack: Pack, name: str) -> str:
    """A pack fragment's SQL without its comment lines (e.g. the core pack's `_family_rules.sql`)."""
    text = (pack.path / name).read_text(encoding="utf-8")
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--")).strip()


def builtin_pack_dirs() -> list[Path]:
    """The packs shipped in the `queries` package."""
    root = Path(str(resources.files("queries")))
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
