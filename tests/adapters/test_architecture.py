"""The layout of ``adapters/_src`` holds: one-way imports (no cycle, even through imports inside
functions; nothing imports the public package back; sources never import ``build``; the library
never imports the application), every module imports on its own, and modules and functions stay
small."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "adapters" / "_src"
PUBLIC = {"adapters", "adapters.transforms", "adapters.heads", "adapters.__main__"}
#: "~350 lines" per module and "~60 lines" of code per function (the docstring not counted)
MAX_MODULE_LINES = 360
MAX_FUNCTION_LINES = 60
#: data tables, longer by nature: the registry's built-in entries
LONG_TABLES = {("adapters._src.entries", "_pathology")}


def _name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".")
    is_package = MODULES[module].name == "__init__.py"
    base = package[: len(package) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str) -> set[str]:
    """Every ``adapters`` module ``module`` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES or sub in PUBLIC else base)
    return {m for m in found if m == "adapters" or m.startswith("adapters.")}


GRAPH = {m: imports_of(m) - {m} for m in MODULES}


def test_no_src_module_imports_the_public_package():
    bad = {m: sorted(GRAPH[m] & PUBLIC) for m in GRAPH if GRAPH[m] & PUBLIC}
    assert not bad, f"modules under adapters/_src import the public package back: {bad}"


def test_sources_do_not_import_build_and_the_library_not_the_app():
    sources = [m for m in GRAPH if m.startswith("adapters._src.sources.")]
    assert sources and not [m for m in sources if "adapters._src.build" in GRAPH[m]]
    library = [m for m in GRAPH if not m.startswith("adapters._src.app")]
    leaks = {m: sorted(i for i in GRAPH[m] if i.startswith("adapters._src.app")) for m in library}
    assert not {m: v for m, v in leaks.items() if v}


def _cycle() -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(m: str, path: list[str]) -> list[str] | None:
        state[m] = 1
        for n in sorted(GRAPH.get(m, ())):
            if state.get(n) == 1:
                return [*path[path.index(n) :], n] if n in path else [*path, n]
            if n in GRAPH and not state.get(n):
                found = visit(n, [*path, n])
                if found:
                    return found
        state[m] = 2
        return None

    for m in GRAPH:
        if not state.get(m):
            found = visit(m, [m])
            if found:
                return found
    return None


def test_no_import_cycle_even_through_function_level_imports():
    assert _cycle() is None, f"import cycle: {' -> '.join(_cycle() or [])}"


def test_the_cycle_check_finds_a_cycle():
    GRAPH["adapters._src.errors"].add("adapters._src.build")  # build imports errors
    try:
        assert _cycle() is not None
    finally:
        GRAPH["adapters._src.errors"].discard("adapters._src.build")


def _code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = node.body
    if isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        body = body[1:]
    return body[-1].end_lineno - body[0].lineno + 1 if body else 0


def test_modules_and_functions_are_small():
    big = {m: n for m, p in MODULES.items() if (n := p.read_text().count("\n")) > MAX_MODULE_LINES}
    assert not big, f"modules over {MAX_MODULE_LINES} lines: {big}; split them"
    long = {}
    for m, p in MODULES.items():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = _code_lines(node)
                if n > MAX_FUNCTION_LINES and (m, node.name) not in LONG_TABLES:
                    long[f"{m}.{node.name}"] = n
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines of code: {long}"


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


@pytest.mark.slow
def test_each_module_imports_on_its_own():
    # each module imported with none of ours loaded before it (torch & co. stay loaded: what
    # is checked is that no module of ours works only after another of ours was imported)
    names = [*MODULES, *sorted(PUBLIC)]
    run = subprocess.run(
        [sys.executable, "-c", _ISOLATED, *names], capture_output=True, text=True, cwd=ROOT
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "{}"
