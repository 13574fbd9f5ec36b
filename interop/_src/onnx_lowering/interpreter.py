"""The graph walk: each node calls the table with its inputs; known values stay NumPy.

Values are JAX arrays (from the user's inputs and the params) or NumPy arrays known while
tracing (constants and what is computed from them alone, shapes included). A node whose
inputs are all known is evaluated at once (see the registry's ``fold``), so that a shape
computed by ``Shape -> Gather -> Concat`` reaches ``Reshape`` as numbers; under ``jax.export``
a symbolic batch size travels in those NumPy arrays as an object element.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from interop._src.onnx_lowering.graph import Graph, OnnxNode
from interop._src.onnx_lowering.registry import TABLE, Node


def _known(v: Any) -> bool:
    return v is None or isinstance(v, (np.ndarray, np.generic))


def _symbolic(v: Any) -> bool:
    return isinstance(v, np.ndarray) and v.dtype == object


def _as_numpy(v: Any) -> Any:
    if v is None or isinstance(v, np.ndarray):
        return v
    return np.asarray(v)


def run_node(node: OnnxNode, inputs: list[Any], opset: int) -> tuple[Any, ...]:
    """One node's outputs (a tuple, one per output name; None for one it does not give)."""
    opdef = TABLE[node.op_type]
    attrs = {**opdef.defaults, **node.attrs}
    n_out = sum(1 for o in node.outputs if o)
    known = all(_known(v) for v in inputs)

    def call(xp: Any) -> Any:
        ctx = Node(node.op_type, node.name, attrs, n_out, opset, xp)
        return opdef.fn(ctx, *inputs)

    if known and opdef.fold == "numpy":
        result = call(np)
        fold = True
    elif known and not any(_symbolic(v) for v in inputs):
        with jax.ensure_compile_time_eval():
            result = call(jnp)
        fold = True
    else:
        result = call(jnp)
        fold = False
    results = result if isinstance(result, tuple) else (result,)
    if fold:
        results = tuple(_as_numpy(r) for r in results)
    return results + (None,) * (len(node.outputs) - len(results))


def run_graph(
    graph: Graph, params: Mapping[str, Any], inputs: Mapping[str, Any]
) -> tuple[Any, ...]:
    """The graph's outputs, in order, as JAX arrays, for ``params`` and ``inputs`` by name."""
    env: dict[str, Any] = {**graph.constants, **params, **inputs}
    for node in graph.nodes:
        values = [env[name] if name else None for name in node.inputs]
        outs = run_node(node, values, graph.opset)
        for name, value in zip(node.outputs, outs, strict=True):
            if name:
                env[name] = value
    return tuple(jnp.asarray(env[o.name]) for o in graph.outputs)
