"""An ONNX model read into what the interpreter walks: nodes with their attributes, the graph's
inputs and outputs, and its initializers split into params (float weights, as the user's JAX
arrays) and known constants (integer tensors, and any tensor read where a shape is decided).

Initializers are copied once out of the protobuf into 64-byte aligned, writable NumPy arrays
(`Graph.arrays`): the params handed to JAX share those buffers on the CPU (XLA copies a buffer
that is not so aligned, and NumPy's view of the protobuf bytes is read-only).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np
import onnx
from onnx import helper, numpy_helper

from interop._src.onnx_lowering.errors import OnnxLoweringError
from interop._src.onnx_lowering.registry import TABLE

#: the oldest default-domain opset the table follows (what torch.onnx.export writes, and newer)
MIN_OPSET = 13
#: XLA's CPU client shares host buffers aligned to this many bytes
ALIGNMENT = 64


@attrs.frozen
class OnnxNode:
    op_type: str
    domain: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any]


@attrs.frozen
class ValueInfo:
    """A graph input or output: its name, NumPy dtype and shape (ints, or a name / None for a
    dimension the graph leaves free)."""

    name: str
    dtype: np.dtype
    shape: tuple[int | str | None, ...] | None


@attrs.frozen
class Graph:
    name: str
    opset: int
    nodes: tuple[OnnxNode, ...]
    inputs: tuple[ValueInfo, ...]
    outputs: tuple[ValueInfo, ...]
    arrays: Mapping[str, np.ndarray]
    params: tuple[str, ...]

    @property
    def constants(self) -> dict[str, np.ndarray]:
        """The initializers that are not params (known while tracing)."""
        return {k: v for k, v in self.arrays.items() if k not in set(self.params)}


def aligned_copy(a: np.ndarray) -> np.ndarray:
    """A writable, C-contiguous, 64-byte aligned copy of ``a``."""
    a = np.asarray(a)
    if a.dtype == object or a.dtype.kind in "US":
        return np.array(a)
    raw = np.empty(a.nbytes + ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    out = raw[start : start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


def read_model(model: str | os.PathLike[str] | onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    """The model (a path is loaded with its external data) and how messages name it."""
    if isinstance(model, onnx.ModelProto):
        return model, f"ONNX graph {model.graph.name!r}"
    path = os.fspath(model)
    try:
        return onnx.load(path), f"ONNX model {path!r}"
    except OSError as err:
        raise OnnxLoweringError(f"cannot read the ONNX model {path!r}: {err}") from err
    except Exception as err:  # protobuf's DecodeError, onnx's errors: not an ONNX file
        raise OnnxLoweringError(f"{path!r} is not an ONNX model ({err})") from err


def _value_info(v: onnx.ValueInfoProto) -> ValueInfo:
    t = v.type.tensor_type
    dtype = np.dtype(helper.tensor_dtype_to_np_dtype(t.elem_type)) if t.elem_type else None
    shape = None
    if t.HasField("shape"):
        shape = tuple(
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim
        )
    return ValueInfo(v.name, dtype, shape)


def _attribute(a: onnx.AttributeProto) -> Any:
    value = helper.get_attribute_value(a)
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode("utf-8") for v in value]
    return value


def _static_uses(g: onnx.GraphProto) -> set[str]:
    """Value names some node reads where a shape is decided (the table's ``static=``)."""
    found = set()
    for n in g.node:
        opdef = TABLE.get(n.op_type) if n.domain in ("", "ai.onnx") else None
        for i in opdef.static if opdef is not None else ():
            if i < len(n.input):
                found.add(n.input[i])
    return found


def shape_inputs(model: onnx.ModelProto) -> list[str]:
    """The graph inputs some node reads where a shape is decided (what ``constants=`` of
    `parse` must bind for the graph to lower), in graph order."""
    uses = _static_uses(model.graph)
    return [v.name for v in model.graph.input if v.name in uses]


def parse(model: onnx.ModelProto, constants: Mapping[str, Any] | None = None) -> Graph:
    """The graph of ``model``: a float initializer is a param unless some node reads it where
    a shape is decided (then it is a constant, as integer initializers are); graph inputs named
    in ``constants`` are bound to those values (constants too, no longer inputs).

    Raises:
        OnnxLoweringError: ``constants`` names something that is not a graph input.
    """
    constants = dict(constants or {})
    names = {v.name for v in model.graph.input}
    if set(constants) - names:
        raise OnnxLoweringError(
            f"constants: {sorted(set(constants) - names)} are not inputs of the graph "
            f"(its inputs: {sorted(names)})"
        )
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    g = model.graph
    static_uses = _static_uses(g)
    arrays = {t.name: aligned_copy(numpy_helper.to_array(t)) for t in g.initializer}
    bound = {k: np.asarray(v) for k, v in constants.items()}
    params = tuple(
        k
        for k, a in arrays.items()
        if a.dtype.kind == "f" and a.dtype.itemsize >= 2 and k not in static_uses
    )
    nodes = tuple(
        OnnxNode(
            n.op_type,
            n.domain,
            n.name or f"{n.op_type}_{i}",
            tuple(n.input),
            tuple(n.output),
            {a.name: _attribute(a) for a in n.attribute},
        )
        for i, n in enumerate(g.node)
    )
    inputs = tuple(_value_info(v) for v in g.input if v.name not in arrays and v.name not in bound)
    arrays.update(bound)
    outputs = tuple(_value_info(v) for v in g.output)
    return Graph(g.name, opset, nodes, inputs, outputs, arrays, params)
