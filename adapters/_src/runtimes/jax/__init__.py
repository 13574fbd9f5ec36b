"""The ``jax`` runtime: a torch backbone lowered into a pure JAX function (`lower_to_jax`,
called by the runtime's `convert`), where its params are.

Its modules: ``lower.py`` (lower, check and cache), ``train.py`` (train mode: a JAX train
step, ``convert(..., train=True)``), ``served.py`` (a cached artifact as a forward that
``jit``, ``grad`` and ``vmap`` take), ``cache.py`` (its cache entry and key), ``device.py``
(where it runs).
"""

from __future__ import annotations

from typing import Any

from ...adapter import Adapter
from ...errors import BuildError


def convert(adapter: Adapter, example_input: Any = None, **options: Any) -> Adapter:
    """The runtime's face (see ``runtimes/table.py``): `adapters.lower_to_jax`."""
    from .lower import lower_to_jax

    return lower_to_jax(adapter, example_input, **options)


def check_device(device: str | None) -> None:
    """Fail before building when ``device`` (a canonical name) is a GPU that JAX does not see.

    Raises:
        BuildError: a GPU device and a CPU-only jaxlib.
    """
    if device in (None, "cpu"):
        return
    import jax

    if not any(d.platform == "gpu" for d in jax.devices()):
        raise BuildError(
            "device",
            f"runtime='jax' runs where the params are, and JAX sees no GPU for {device} "
            f"(its devices: {', '.join(str(d) for d in jax.devices())})",
            fix="Install a CUDA jaxlib (pip install 'jax[cuda12]'), or build on the CPU",
        )
