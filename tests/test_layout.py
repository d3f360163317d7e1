"""Imports go one way: cli > commands > reports > analysis > engine and the other core modules > parsers.

Every module of traceview/ (parsers/ and queries/ included, installed as traceview.parsers and traceview.queries) is
parsed with `ast` (nothing is imported), and every import in it is
collected, those inside functions included (only `if TYPE_CHECKING:` blocks are skipped: they never run). A module
may import its own layer or one below; the imports may form no cycle, whatever the layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Dotted package -> its folder. traceview/parsers and traceview/queries are links to the top-level folders.
PACKAGES = {
    "traceview": ROOT / "traceview",
    "traceview.parsers": ROOT / "parsers",
    "traceview.queries": ROOT / "queries",
}
LINKED = {ROOT / "traceview" / "parsers", ROOT / "traceview" / "queries", ROOT / "traceview" / "demo_sample"}

# Highest first. A module belongs to the first entry that is its name or a package above it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("cli", ("traceview", "traceview.cli", "traceview.clidoc", "traceview.__main__", "traceview.demo")),
    ("commands", ("traceview.commands",)),
    ("reports", ("traceview.reports",)),
    ("analysis", ("traceview.analysis", "traceview.families")),
    (
        "core",
        (
            "traceview.engine",
            "traceview.packs",
            "traceview.sandbox",
            "traceview.store",
            "traceview.jsonify",
            "traceview.errors",
            "traceview.atomic",
            "traceview.paths",
            "traceview.devices",
            "traceview.units",
            "traceview._version",
        ),
    ),
    ("parsers", ("traceview.parsers", "traceview.queries")),
]



def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the packages."""
    modules = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            if any(parent in LINKED for parent in path.parents):
                continue
            parts = (*package.split("."), *path.relative_to(folder).with_suffix("").parts)
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []
    pending = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        pending.extend(ast.iter_child_nodes(node))
    return found


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of the packages that `name` imports (`from pkg import mod` is mod when mod is a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join(anchor + ([base] if base else []))
        for alias in node.names:
            targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {target for target in targets if target in modules and target != name}


def layer_of(name: str) -> int:
    """The rank of a module's layer (0 is the highest)."""
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(name == p or (p != "traceview" and name.startswith(p + ".")) for p in prefixes):
            return rank
    raise AssertionError(f"{name} is in no layer: add it to LAYERS in tests/test_layout.py")


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of the packages it imports."""
    modules = module_files()
    return {
        name: set(imports_of(name, path, modules))
        for name, path in modules.items()
    }


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """`a -> b (layer -> layer)` for every import of a module from a higher layer."""
    return sorted(
        f"{source} -> {target} ({LAYERS[layer_of(source)][0]} imports {LAYERS[layer_of(target)][0]})"
        for source, targets in graph.items()
        for target in targets
        if layer_of(target) < layer_of(source)
    )


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_every_module_has_a_layer() -> None:
    for name in module_files():
        layer_of(name)


def test_no_upward_import() -> None:
    assert upward_imports(import_graph()) == []


def test_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_parsers_import_nothing_of_traceview() -> None:
    graph = import_graph()
    parsers = [name for name in graph if name.startswith("traceview.parsers")]
    assert len(parsers) > 20
    assert not [(s, t) for s in parsers for t in graph[s] if not t.startswith("traceview.parsers")]


def _top_level_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_parsers_and_queries_are_imported_only_as_traceview_modules() -> None:
    """`import parsers` would load a second copy of every module (and its exception classes) beside
    traceview.parsers, and fails from the installed wheel, which has no top-level `parsers`."""
    offenders = sorted(
        str(path.relative_to(ROOT))
        for folder in ("traceview", "parsers", "queries", "tests", "benchmarks", "sample_traces")
        for path in (ROOT / folder).rglob("*.py")
        if not any(parent in LINKED for parent in path.parents)
        and _top_level_imports(path) & {"parsers", "queries"}
    )
    assert offenders == []


def test_the_links_lead_to_the_top_level_folders() -> None:
    for link, target in (("parsers", "parsers"), ("queries", "queries"), ("demo_sample", "sample_traces/longctx_h200")):
        assert (ROOT / "traceview" / link).is_symlink()
        assert (ROOT / "traceview" / link).resolve() == (ROOT / target).resolve()


def test_the_checks_see_function_level_imports_and_cycles(tmp_path: Path) -> None:
    """The checker itself: an import inside a function counts, a TYPE_CHECKING one does not, a cycle is found."""
    source = tmp_path / "mod.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from traceview.cli import app\n"
        "def f():\n    from traceview.commands import query\n"
    )
    modules = {"traceview.cli": source, "traceview.commands.query": source, "traceview.engine": source}
    assert imports_of("traceview.engine", source, modules) == {"traceview.commands.query"}
    graph = {"traceview.engine": {"traceview.commands.query"}, "traceview.commands.query": {"traceview.engine"}}
    assert upward_imports(graph) == ["traceview.engine -> traceview.commands.query (core imports commands)"]
    assert cycles(graph) == [["traceview.commands.query", "traceview.engine"]]
