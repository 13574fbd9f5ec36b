"""The build-time check: before any JAX runs, every node must be in the table (default domain,
opset 13 or newer), in a use the table does not refuse, and every input that decides a shape
must be known while tracing. Everything wrong is collected into one `OnnxLoweringError`."""

from __future__ import annotations

from collections import defaultdict

import ml_dtypes
import numpy as np

from interop._src.onnx_lowering.errors import OnnxLoweringError, problems_message
from interop._src.onnx_lowering.graph import MIN_OPSET, Graph
from interop._src.onnx_lowering.registry import TABLE

_DEFAULT_DOMAINS = ("", "ai.onnx")
#: the element types the table computes in (64-bit ones narrowed without x64)
DTYPES = frozenset(
    np.dtype(t)
    for t in (
        bool, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
        np.uint64, np.float16, np.float32, np.float64, ml_dtypes.bfloat16,
    )
)  # fmt: skip


def _dtype_problems(graph: Graph) -> list[str]:
    """Graph inputs, outputs, initializers and casts of a type outside `DTYPES` (strings,
    complex numbers, 8-, 4- and 2-bit floats and integers)."""
    found = []
    for kind, infos in (("input", graph.inputs), ("output", graph.outputs)):
        for v in infos:
            if v.dtype is not None and v.dtype not in DTYPES:
                found.append(
                    f"graph {kind} {v.name!r}: element type {v.dtype} is outside the table"
                )
    for k, a in graph.arrays.items():
        if a.dtype not in DTYPES:
            found.append(f"initializer {k!r}: element type {a.dtype} is outside the table")
    for node in graph.nodes:
        if node.op_type == "Cast" and _np(node.attrs.get("to")) not in DTYPES:
            found.append(f"node {node.name!r} (Cast): a cast to {_np(node.attrs.get('to'))}")
        value = node.attrs.get("value")
        if (
            node.op_type == "Constant"
            and isinstance(value, np.ndarray)
            and value.dtype not in DTYPES
        ):
            found.append(f"node {node.name!r} (Constant): element type {value.dtype}")
    return found


def _np(onnx_type: int | None) -> np.dtype | None:
    from onnx import helper

    return None if onnx_type is None else np.dtype(helper.tensor_dtype_to_np_dtype(onnx_type))


def check_graph(graph: Graph, what: str) -> None:
    """Raise one `OnnxLoweringError` naming every op type outside the table with the nodes
    using it, and every refused node; nothing when the graph lowers.

    Raises:
        OnnxLoweringError: an opset older than 13, missing ops or refused nodes.
    """
    if graph.opset < MIN_OPSET:
        raise OnnxLoweringError(
            f"cannot lower {what} to JAX: it declares opset {graph.opset} of the default "
            f"domain; the table follows opset {MIN_OPSET} and newer. Fix: re-export with "
            f"opset_version>={MIN_OPSET}, or convert it (onnx.version_converter.convert_version)."
        )
    missing: dict[str, list[str]] = defaultdict(list)
    refused: list[str] = _dtype_problems(graph)
    known = set(graph.constants) | {""}
    for node in graph.nodes:
        opdef = TABLE.get(node.op_type) if node.domain in _DEFAULT_DOMAINS else None
        if opdef is None:
            key = (
                node.op_type if node.domain in _DEFAULT_DOMAINS else f"{node.domain}.{node.op_type}"
            )
            missing[key].append(node.name)
            continue
        where = f"node {node.name!r} ({node.op_type})"
        attrs = {**opdef.defaults, **node.attrs}
        n_out = sum(1 for o in node.outputs if o)
        why = opdef.refuses(attrs, n_out) if opdef.refuses is not None else None
        if why is not None:
            refused.append(f"{where}: {why}")
        for i in opdef.static:
            if i < len(node.inputs) and node.inputs[i] not in known:
                refused.append(
                    f"{where}: input {i} ({node.inputs[i]!r}) decides a shape but is computed "
                    "from the data or the params; a shape must be known while tracing"
                )
        if opdef.fold == "shape" or all(i in known for i in node.inputs):
            known.update(node.outputs)
    if missing or refused:
        raise OnnxLoweringError(problems_message(what, missing, refused))
