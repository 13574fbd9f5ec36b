"""The adapters' own layering: sources never import ``build``, runtimes never import each
other, and the library never imports the application (``adapters/_src/app``). The rules every
package keeps (no cycle, privacy, sizes, each module importing alone) are
``tests/test_architecture.py``."""

from __future__ import annotations

from adapters._src.runtimes.table import RUNTIMES
from tests.architecture import GRAPH, modules_of


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
