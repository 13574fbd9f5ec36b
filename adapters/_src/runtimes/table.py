"""The runtime table: runtime name -> the module that runs it, imported on first use.

A runtime turns an adapter into an adapter with the same spec and meaning, running elsewhere.
Every runtime module has the same face:

- ``convert(adapter, example_input=None, **options) -> Adapter``: the adapter, run by this
  runtime (``example_input`` is what a runtime that traces the backbone traces; default:
  zeros of ``adapter.info["input_shape"]``, ``inputs.default_example``);
- ``check_device(device) -> None``: raise `BuildError` before anything is built when the
  runtime cannot run on ``device`` (a canonical name, or None).

A new runtime is its module plus one line here. ``build(spec, runtime=...)`` and the CLI's
``--runtime`` (whose choices are this table's names) both go through `runtime_module`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import BuildError

#: runtime name -> the module (or package) with its ``convert`` and ``check_device``
RUNTIMES: dict[str, str] = {
    "torch": "adapters._src.runtimes.torch",
    "onnxruntime": "adapters._src.runtimes.onnxruntime",
    "jax": "adapters._src.runtimes.jax",
}


def runtime_module(runtime: str) -> ModuleType:
    """The module of a runtime name (its ``convert`` and ``check_device``).

    Raises:
        BuildError: unknown ``runtime`` (lists the known ones).
    """
    if runtime not in RUNTIMES:
        raise BuildError(
            "runtime",
            f"unknown runtime {runtime!r}",
            expected=f"one of {', '.join(RUNTIMES)}",
            got=runtime,
        )
    return importlib.import_module(RUNTIMES[runtime])
