"""What the command line says about a backbone (its parameter count or an ONNX model's
initializers, its weights, whether its output is features), and `say`, how every line of a
command's output is printed."""

from __future__ import annotations

from typing import Any

import numpy as np

from .weights import describe_weights


def say(*parts: Any) -> None:
    """Print one line of a command's output at once (flushed: a log shows it as it happens)."""
    print(*parts, flush=True)


def say_backbone(backbone: Any, seed: int | None, where: str, framework: str) -> None:
    """The lines every command that embeds prints about its built backbone: ``backbone:`` (its
    size, ``where`` it runs, ``framework``), ``weights:`` and a ``note:`` when its output is a
    classifier's logits."""
    say(f"backbone: {describe_parameters(backbone)} on {where} ({framework})")
    say(f"weights: {describe_weights(backbone, seed)}")
    note = logits_note(backbone)
    if note:
        say(f"note: {note}")


def count_parameters(backbone: Any) -> tuple[int, int, str]:
    """``(count, bytes, what)`` of a built backbone's weights: its ``params`` tensors, or, for
    an ONNX model or a backbone served by ONNX Runtime (whose ``params`` are empty), the
    graph's initializers.

    Args:
        backbone: a built adapter.

    Returns:
        The number of values, their size in bytes, and ``"parameters"`` or
        ``"initializers"`` (what was counted).
    """
    tensors = [v for v in (backbone.params or {}).values() if hasattr(v, "shape")]
    # an ONNX model, or a backbone served by ONNX Runtime: the weights are in the graph
    path = (backbone.info or {}).get("onnx_path") or getattr(backbone.spec, "path", None)
    if not tensors and isinstance(path, str) and path.endswith(".onnx"):
        return (*_onnx_initializers(path), "initializers")
    count = sum(int(np.prod(tuple(v.shape))) for v in tensors)
    size = sum(_itemsize(v) * int(np.prod(tuple(v.shape))) for v in tensors)
    return count, size, "parameters"


def _itemsize(v: Any) -> int:
    if hasattr(v, "element_size"):  # torch
        return int(v.element_size())
    return int(np.dtype(v.dtype).itemsize)


def _onnx_initializers(path: str) -> tuple[int, int]:
    import onnx
    from onnx.helper import tensor_dtype_to_np_dtype

    graph = onnx.load(path, load_external_data=False).graph
    count = size = 0
    for init in graph.initializer:
        n = int(np.prod(tuple(init.dims)))
        count += n
        size += n * np.dtype(tensor_dtype_to_np_dtype(init.data_type)).itemsize
    return count, size


def describe_parameters(backbone: Any) -> str:
    """``"5,717,416 parameters (21.81 MiB)"`` (or ``initializers`` for an ONNX model)."""
    count, size, what = count_parameters(backbone)
    return f"{count:,} {what} ({size / 2**20:.2f} MiB)"


def logits_note(backbone: Any) -> str | None:
    """A warning when the backbone's output is a timm classifier's logits (a ``timm`` spec
    without ``num_classes: 0``, used whole) rather than features, with how to get features;
    None otherwise."""
    import specs

    spec = backbone.spec
    info = backbone.info or {}
    if not isinstance(spec, specs.TimmSpec) or spec.model_kwargs.get("num_classes") == 0:
        return None
    if info.get("output", "model") != "model" or getattr(spec, "transforms", ()):
        return None
    return (
        f"the output is timm's classifier logits ({spec.model_name} with its "
        f"{'random ' if not spec.pretrained else ''}classification head), not pooled features; "
        f"for features use a spec file with model_kwargs: {{num_classes: 0}} "
        f"(source: timm, model_name: {spec.model_name})"
    )
