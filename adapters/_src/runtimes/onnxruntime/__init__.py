"""The ``onnxruntime`` runtime: a torch backbone exported once to ONNX and served by ONNX
Runtime on the CPU (`to_onnxruntime`, the runtime's `convert`).

Its modules: ``serve.py`` (export, check, cache and serve), ``export.py`` (the ONNX export,
also `adapters.export_onnx`), ``fusion.py`` (attention fusion), ``cache.py`` (its cache key
and location).
"""

from __future__ import annotations

from typing import Any

from ...adapter import Adapter
from ...errors import BuildError


def to_onnxruntime(adapter: Adapter, example_input: Any = None, **options: Any) -> Adapter:
    """Serve a torch-family adapter with ONNX Runtime, exporting it once to a cache.

    Args:
        adapter: a torch-family `Adapter` (``framework == "torch"``), on the CPU.
        example_input: the input the ONNX export traces (batch left dynamic); default zeros
            of the model's known input shape (``adapter.info["input_shape"]``).
        options: passed on to the cache and session (``cache_dir``, ``intra_op_num_threads``,
            ``graph_optimization_level``, ``atol``, ``rtol``).

    Returns:
        An ONNX Runtime `Adapter` with the same ``spec`` and output structure (its ``info``:
        ``adapters/_src/runtimes/onnxruntime/serve.py``).

    Raises:
        BuildError: no ``example_input`` and the model declares no input shape, or the export
            failed.
        TypeError: ``adapter`` is not torch-family.
        adapters.ParityError: the export differs from torch beyond tolerance.

    Example:
        >>> served = adapters.to_onnxruntime(adapters.build("timm/resnet18"))
    """
    # lazy: ``import adapters`` (and the CLI's --help) imports no framework
    from ..inputs import default_example
    from .serve import serve_with_onnxruntime

    example = default_example(adapter, example_input, "onnxruntime")
    return serve_with_onnxruntime(adapter, example, **options)


#: the runtime's face (see ``runtimes/table.py``)
convert = to_onnxruntime


def check_device(device: str | None) -> None:
    """Fail before building unless ``device`` (a canonical name) is the CPU or None.

    Raises:
        BuildError: any other device.
    """
    if device not in (None, "cpu"):
        raise BuildError(
            "device",
            f"runtime='onnxruntime' serves the exported backbone on the CPU, not {device}",
            fix="Use runtime='torch' with this device, or export the backbone "
            "(python -m adapters export) and build specs.OnnxSpec(path=..., device='cuda')",
        )
