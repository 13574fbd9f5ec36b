"""The house rules' machinery, for the three packages (``specs``, ``adapters``, ``interop``):
every module found, the import graph between them (imports inside functions included), cycles,
sizes, and importing each module on its own. The rules themselves are tests:
``tests/test_architecture.py`` (every package) and ``tests/adapters/test_architecture.py``
(the adapters' own layering)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("specs", "adapters", "interop")
#: "~350 lines" per module and "~60 lines" of code per function (the docstring not counted)
MAX_MODULE_LINES = 360
MAX_FUNCTION_LINES = 60


def _name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


#: every module of ours, by dotted name
MODULES: dict[str, Path] = {
    _name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))
}


def modules_of(package: str) -> list[str]:
    """The modules of ``package`` (``"interop"``, ``"adapters._src.sources"``), itself included."""
    return [m for m in MODULES if m == package or m.startswith(package + ".")]


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".")
    is_package = MODULES[module].name == "__init__.py"
    base = package[: len(package) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def _ours(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def _nodes(tree: ast.AST, top_level: bool) -> list[ast.AST]:
    """Every node of ``tree``, or (``top_level``) those outside functions."""
    if not top_level:
        return list(ast.walk(tree))
    found, todo = [], [tree]
    while todo:
        node = todo.pop()
        found.append(node)
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(node))
    return found


def imports_of(module: str, top_level: bool = False) -> set[str]:
    """Every module of ours that ``module`` imports, at the top or inside a function (only at
    the top, outside functions, with ``top_level``)."""
    found: set[str] = set()
    for node in _nodes(ast.parse(MODULES[module].read_text()), top_level):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
    return {m for m in found if _ours(m)} - {module}


#: module -> the modules of ours it imports
GRAPH: dict[str, set[str]] = {m: imports_of(m) for m in MODULES}


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (``[a, b, a]``), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(m: str, path: list[str]) -> list[str] | None:
        state[m] = 1
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return [*path[path.index(n) :], n] if n in path else [*path, n]
            if n in graph and not state.get(n):
                found = visit(n, [*path, n])
                if found:
                    return found
        state[m] = 2
        return None

    for m in graph:
        if not state.get(m):
            found = visit(m, [m])
            if found:
                return found
    return None


def private_imports(module: str) -> set[str]:
    """The ``_src`` modules of *another* package that ``module`` imports."""
    own = module.split(".")[0]
    return {m for m in GRAPH[module] if m.split(".")[0] != own and "_src" in m.split(".")}


def big_modules(modules: list[str]) -> dict[str, int]:
    """The modules over `MAX_MODULE_LINES` lines, with their line counts."""
    counts = {m: MODULES[m].read_text().count("\n") for m in modules}
    return {m: n for m, n in counts.items() if n > MAX_MODULE_LINES}


def _code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = node.body
    if isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        body = body[1:]
    return body[-1].end_lineno - body[0].lineno + 1 if body else 0


def long_functions(modules: list[str], exempt: set[tuple[str, str]] = frozenset()) -> dict:
    """``{"module.function": lines}`` for functions (nested ones too) over `MAX_FUNCTION_LINES`
    lines of code, the docstring not counted; ``exempt`` holds ``(module, function)`` pairs."""
    long = {}
    for m in modules:
        for node in ast.walk(ast.parse(MODULES[m].read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = _code_lines(node)
                if n > MAX_FUNCTION_LINES and (m, node.name) not in exempt:
                    long[f"{m}.{node.name}"] = n
    return long


_ISOLATED = """
import importlib, sys
failures = {}
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m.split(".")[0] in ("adapters", "specs", "interop")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as err:
        failures[name] = f"{type(err).__name__}: {err}"
print(failures)
"""


def import_failures(modules: list[str]) -> str:
    """``"{}"`` when each module imports with none of ours loaded before it, else the
    failures (torch & co. stay loaded: what is checked is that no module of ours works only
    after another of ours was imported)."""
    run = subprocess.run(
        [sys.executable, "-c", _ISOLATED, *modules], capture_output=True, text=True, cwd=ROOT
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()
