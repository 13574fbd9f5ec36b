"""The commands of ``python -m adapters``, one module each.

A command's module has ``HELP`` (its line in ``--help``), ``EXAMPLES`` (shown under its own
``--help``; ``{prog}`` is how the program was invoked), ``add_arguments(parser)`` and
``run(args)`` (returns the exit status). Its top level imports no framework, so ``--help`` and
a bad flag never wait for torch, and ``run`` says its first line before it imports one.

A new command is one module here and its name in `NAMES`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: the commands, in the order ``--help`` lists them
NAMES = ("list", "inspect", "embed", "probe", "export")


def module(name: str) -> ModuleType:
    """The module of the command ``name`` (one of `NAMES`)."""
    return importlib.import_module(f"{__name__}.{name}")
