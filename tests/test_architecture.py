"""The house rules, for each of the three packages: no import cycle (imports inside functions
included), no ``_src`` module importing its own public package back, no module importing
another package's ``_src`` (beyond the known imports listed below), every module importing on
its own, and modules and functions kept small. The adapters' own layering (sources, build,
the application) is ``tests/adapters/test_architecture.py``."""

from __future__ import annotations

import pytest

from tests.architecture import (
    GRAPH,
    MAX_FUNCTION_LINES,
    MAX_MODULE_LINES,
    PACKAGES,
    big_modules,
    cycle,
    import_failures,
    long_functions,
    modules_of,
    private_imports,
)

#: data tables, longer by nature: the registry's built-in entries
LONG_TABLES = {("adapters._src.entries", "_pathology")}

#: Imports of another package's ``_src``: none. Shared helpers live in the sanctioned internal
#: namespaces ``specs.internal`` and ``interop.internal``; nothing may be added here.
KNOWN_PRIVATE_IMPORTS: set[tuple[str, str]] = set()


def test_no_import_cycle_even_through_function_level_imports() -> None:
    found = cycle(GRAPH)
    assert found is None, f"import cycle: {' -> '.join(found or [])}"


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = {m: set(v) for m, v in GRAPH.items()}
    graph["interop._src.dtypes"].add("interop._src.bridge")  # the bridge imports dtypes
    assert cycle(graph) is not None


@pytest.mark.parametrize("package", PACKAGES)
def test_no_src_module_imports_its_public_package(package: str) -> None:
    public = {m for m in modules_of(package) if "_src" not in m.split(".")}
    private = modules_of(f"{package}._src")
    bad = {m: sorted(GRAPH[m] & public) for m in private if GRAPH[m] & public}
    assert not bad, f"modules under {package}/_src import the public package back: {bad}"


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_imports_another_packages_src(package: str) -> None:
    found = {(m, i) for m in modules_of(package) for i in private_imports(m)}
    new = sorted(found - KNOWN_PRIVATE_IMPORTS)
    assert not new, (
        f"{package} imports another package's _src: {new}. Import its public names instead "
        "(or give a shared helper a public home)."
    )


def test_the_known_private_imports_are_still_made() -> None:
    # an entry that no longer holds is removed, so that it cannot come back unnoticed
    stale = {(m, i) for m, i in KNOWN_PRIVATE_IMPORTS if i not in GRAPH.get(m, ())}
    assert not stale, f"remove these from KNOWN_PRIVATE_IMPORTS: {sorted(stale)}"


@pytest.mark.parametrize("package", PACKAGES)
def test_modules_and_functions_are_small(package: str) -> None:
    big = big_modules(modules_of(package))
    assert not big, f"modules over {MAX_MODULE_LINES} lines: {big}; split them by concept"
    long = long_functions(modules_of(package), LONG_TABLES)
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines of code: {long}"


@pytest.mark.slow
@pytest.mark.parametrize("package", PACKAGES)
def test_each_module_imports_on_its_own(package: str) -> None:
    assert import_failures(modules_of(package)) == "{}"
