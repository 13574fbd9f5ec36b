"""Runtimes: each a function from an adapter to an adapter, looked up by name.

``torch`` is the identity (the adapter runs as its source loaded it); ``onnxruntime`` exports a
torch backbone once and serves it with ONNX Runtime (`to_onnxruntime`); ``jax`` lowers it into
a pure JAX function (`lower_to_jax`, ``adapters/_src/runtimes/jax.py``). ``build(spec,
runtime=...)`` and the CLI's ``--runtime`` both call these.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from ..adapter import Adapter
from ..errors import BuildError

#: runtime name -> ``module:function`` of its ``(adapter, example) -> adapter`` (lazy imports)
RUNTIMES: dict[str, str] = {
    "torch": "adapters._src.runtimes.convert:to_torch",
    "onnxruntime": "adapters._src.runtimes.convert:to_onnxruntime",
    "jax": "adapters._src.runtimes.jax:lower_to_jax",
}


def runtime_function(runtime: str) -> Callable[[Adapter, Any], Adapter]:
    """The ``(adapter, example) -> adapter`` function of a runtime name.

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
    module_name, name = RUNTIMES[runtime].split(":")
    return getattr(importlib.import_module(module_name), name)


def check_runtime_device(runtime: str, device: str | None) -> None:
    """Fail before building when ``runtime`` cannot serve on ``device`` (a canonical name).

    Raises:
        BuildError: ``runtime="onnxruntime"`` with a device other than the CPU, or
            ``runtime="jax"`` on a GPU that JAX does not see (a CPU-only jaxlib).
    """
    if runtime == "jax" and device not in (None, "cpu"):
        import jax

        if not any(d.platform == "gpu" for d in jax.devices()):
            raise BuildError(
                "device",
                f"runtime='jax' runs where the params are, and JAX sees no GPU for {device} "
                f"(its devices: {', '.join(str(d) for d in jax.devices())})",
                fix="Install a CUDA jaxlib (pip install 'jax[cuda12]'), or build on the CPU",
            )
    if runtime == "onnxruntime" and device not in (None, "cpu"):
        raise BuildError(
            "device",
            f"runtime='onnxruntime' serves the exported backbone on the CPU, not {device}",
            fix="Use runtime='torch' with this device, or export the backbone "
            "(python -m adapters export) and build specs.OnnxSpec(path=..., device='cuda')",
        )


def to_torch(adapter: Adapter, example_input: Any = None) -> Adapter:
    """The torch runtime: ``adapter`` itself (``example_input`` is not needed)."""
    return adapter


def to_onnxruntime(adapter: Adapter, example_input: Any = None, **options: Any) -> Adapter:
    """Serve a torch-family adapter with ONNX Runtime, exporting it once to a cache.

    Args:
        adapter: a torch-family `Adapter` (``framework == "torch"``), on the CPU.
        example_input: the input the ONNX export traces (batch left dynamic); default zeros
            of the model's known input shape (``adapter.info["input_shape"]``).
        options: passed on to the cache and session (``cache_dir``, ``intra_op_num_threads``,
            ``graph_optimization_level``, ``atol``, ``rtol``).

    Returns:
        An ONNX Runtime `Adapter` with the same ``spec`` and output structure (see
        ``adapters/_src/runtimes/onnxruntime.py`` for its ``info``).

    Raises:
        BuildError: no ``example_input`` and the model declares no input shape, or the export
            failed.
        TypeError: ``adapter`` is not torch-family.
        adapters.ParityError: the export differs from torch beyond tolerance.

    Example:
        >>> served = adapters.to_onnxruntime(adapters.build("timm/resnet18"))
    """
    from .onnxruntime import serve_with_onnxruntime

    example = example_input
    if example is None:
        shape = adapter.info.get("input_shape") if isinstance(adapter, Adapter) else None
        if shape is None and isinstance(adapter, Adapter):
            raise BuildError(
                "example_input",
                "serving with onnxruntime needs an example input, and this model does not "
                "declare its input shape",
                fix="Pass example_input=torch.randn(1, 3, 224, 224) (your input shape)",
            )
        if shape is not None:
            import torch

            example = torch.zeros(tuple(shape))
    return serve_with_onnxruntime(adapter, example, **options)
