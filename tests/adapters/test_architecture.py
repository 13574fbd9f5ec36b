"""The adapters' own layering: sources never import ``build``, runtimes never import each
other, the library never imports the application (``adapters/_src/app``), and the application
keeps its layout (a command is one module of ``app/commands`` listed in ``commands.NAMES``;
``app/ray`` is imported only where ``--engine ray`` or a Ray directory needs it, and only
there). The rules every package keeps (no cycle, privacy, sizes, each module importing alone)
are ``tests/test_architecture.py``."""

from __future__ import annotations

from adapters._src.app import commands
from adapters._src.runtimes.table import RUNTIMES
from tests.architecture import GRAPH, imports_of, modules_of

APP = "adapters._src.app"
#: the only modules outside app/ray that import it: for --engine ray, and to read its output
RAY_IMPORTERS = {f"{APP}.commands.embed", f"{APP}.store"}


def test_sources_do_not_import_build_and_the_library_not_the_app() -> None:
    sources = modules_of("adapters._src.sources")
    assert sources and not [m for m in sources if "adapters._src.build" in GRAPH[m]]
    app = set(modules_of("adapters._src.app"))
    library = [m for m in modules_of("adapters._src") if m not in app]
    leaks = {m: sorted(GRAPH[m] & app) for m in library}
    assert not {m: v for m, v in leaks.items() if v}


def test_runtimes_share_code_only_through_neutral_modules() -> None:
    # a runtime never imports another runtime's modules; what two share is in runtimes/ itself
    own = {name: set(modules_of(module)) for name, module in RUNTIMES.items()}
    crossing = {
        (m, other)
        for name, mine in own.items()
        for m in mine
        for other, theirs in own.items()
        if other != name and GRAPH[m] & theirs
    }
    assert not crossing, f"runtime modules importing another runtime: {sorted(crossing)}"


def test_a_command_is_one_module_listed_once() -> None:
    found = {m.rsplit(".", 1)[1] for m in modules_of(f"{APP}.commands")} - {"commands"}
    assert sorted(commands.NAMES) == sorted(found), "commands.NAMES lists app/commands/ exactly"
    for name in commands.NAMES:
        module = commands.module(name)
        face = [a for a in ("HELP", "EXAMPLES", "add_arguments", "run") if hasattr(module, a)]
        assert face == ["HELP", "EXAMPLES", "add_arguments", "run"], (name, face)


def test_the_ray_engine_is_imported_only_where_it_is_needed_and_only_then() -> None:
    ray = set(modules_of(f"{APP}.ray"))
    outside = [m for m in modules_of("adapters") if m not in ray]
    importers = {m for m in outside if GRAPH[m] & ray}
    assert importers <= RAY_IMPORTERS, f"app/ray imported by {sorted(importers - RAY_IMPORTERS)}"
    at_the_top = {m for m in importers if imports_of(m, top_level=True) & ray}
    assert not at_the_top, f"app/ray imported at the top of {sorted(at_the_top)}"
