"""A folder named ``specs/`` or ``interop/`` that hides the installed package of that name.

Python searches the current directory (or the running script's) before an install, and a
folder there is a package even without ``__init__.py`` (a namespace package). An editable
install is found by a finder that Python asks only after that search, so a folder of YAML
specs named ``specs/`` beside the user's work would end ``import adapters`` in "cannot import
name 'ClsToken' from 'specs' (unknown location)". `check_siblings` runs before any module of
``adapters`` imports its sibling packages and names the folder and the fix instead.
(A folder named ``adapters/`` hides this very package, so none of this code runs; the README
says what then happens.)
"""

from __future__ import annotations

import importlib.util
import sys
from importlib.machinery import ModuleSpec
from pathlib import Path

#: the sibling packages ``adapters`` imports (``specs`` and ``interop`` import none of ours)
SIBLINGS = ("specs", "interop")
#: what every one of our packages holds: its private modules
MARKER = "_src"


def check_siblings() -> None:
    """Raise an `ImportError` when ``specs`` or ``interop`` would import something that is
    not fm-adapters' package (a folder without ``__init__.py``, a lone module, another
    project's package), naming where it comes from and what to do.

    The error's ``name`` is ``"adapters"`` (the package that cannot be imported), so that
    ``python -m adapters`` prints it on one line.

    Raises:
        ImportError: a sibling package is shadowed.
    """
    for name in SIBLINGS:
        found = _shadowed(name)
        if found is not None:
            raise ImportError(_message(name, *found), name="adapters")


def _spec_of(name: str) -> ModuleSpec | None:
    module = sys.modules.get(name)
    if module is not None:
        return getattr(module, "__spec__", None)
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):  # a broken finder: the import itself will say more
        return None


def _shadowed(name: str) -> tuple[str, Path] | None:
    """What ``import name`` would import, and the folder holding it, when that is not our
    package; None when it is ours (or cannot be judged)."""
    spec = _spec_of(name)
    if spec is None:
        return None  # not installed: the import fails with Python's own message
    locations = list(spec.submodule_search_locations or ())
    if spec.origin in (None, "namespace"):
        if not locations:
            return None
        where = ", ".join(locations)
        what = f"the folder {where} (no __init__.py: Python takes it for a namespace package)"
        return what, Path(locations[0]).parent
    origin = Path(spec.origin)
    if not origin.is_file():
        return None  # a zip or another loader: nothing on disk to judge by
    if not locations:
        return f"the module {origin} (ours is a package)", origin.parent
    if not (origin.parent / MARKER).is_dir():
        return f"the package {origin.parent} (not ours: no {MARKER}/ in it)", origin.parent.parent
    return None


def _ours(name: str) -> str:
    here = Path(__file__).resolve().parents[2] / name
    return f" ({here})" if (here / MARKER).is_dir() else ""


def _fix(name: str, parent: Path) -> str:
    """Where ``parent`` sits on the search path, and what to do about it."""
    rename = "Rename it"
    try:
        if parent.resolve() == Path.cwd().resolve():
            return (
                f"Python looks in the current directory before the installed packages. "
                f"{rename}, or run from another directory (the fm-adapters command works "
                f"from any)."
            )
        if sys.path and sys.path[0] and parent.resolve() == Path(sys.path[0]).resolve():
            return (
                f"Python looks in the running script's folder before the installed packages. "
                f"{rename}, or move the script out of {parent}."
            )
    except OSError:  # a deleted working directory
        pass
    return f"{parent} comes first on sys.path (PYTHONPATH?). {rename}, or take it off the path."


def _message(name: str, problem: str, parent: Path) -> str:
    return (
        f"import adapters: {name!r} would be imported from {problem}, which hides fm-adapters' "
        f"own {name!r}{_ours(name)}. {_fix(name, parent)}"
    )
