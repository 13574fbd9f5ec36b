"""`lower_onnx`: an ONNX model as a pure JAX ``forward(params, inputs)`` and its params."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import onnx

from interop._src.bridge import to_jax
from interop._src.onnx_lowering import ops  # noqa: F401  (fills the table)
from interop._src.onnx_lowering.check import check_graph
from interop._src.onnx_lowering.graph import Graph, parse, read_model
from interop._src.onnx_lowering.interpreter import run_graph


def lower_onnx(
    model: str | os.PathLike[str] | onnx.ModelProto,
    *,
    constants: Mapping[str, Any] | None = None,
) -> tuple[Callable[..., Any], dict[str, jax.Array], Graph]:
    """Lower an ONNX model (opset 13 or newer) into a pure JAX function.

    Args:
        model: a path to an ``.onnx`` file (its external data beside it) or a ``ModelProto``.
        constants: graph inputs bound to values now (NumPy arrays by input name): they are
            no longer inputs of ``forward``. A graph whose shapes, axes or sizes are inputs
            (``interop.onnx_lowering.shape_inputs(model)``) lowers only with them bound.

    Returns:
        ``(forward, params, graph)``. ``forward(params, inputs)``: ``inputs`` one array (a
        single-input graph), a tuple in the graph's input order, or a dict by input name;
        returns one array for a single-output graph, else a tuple in graph order. ``jit``,
        ``grad``, ``vmap`` and ``jax.export`` work on it; a graph input's free leading axis
        may vary (``jax.export`` takes it symbolic). ``params``: the float initializers
        (the weights) as JAX arrays keyed by initializer name, sharing memory with
        ``graph.arrays`` on the CPU; integer initializers and those read where a shape is
        decided are constants of the graph (``graph.constants``). ``graph``: the parsed graph.

    Raises:
        OnnxLoweringError: the file cannot be read, its opset is older than 13, or ops are
            outside the table (one error listing every missing op type with the nodes using
            it, and every refused node).
    """
    proto, what = read_model(model)
    graph = parse(proto, constants)
    check_graph(graph, what)
    params = {k: to_jax(graph.arrays[k]) for k in graph.params}
    names = [i.name for i in graph.inputs]

    def forward(params: Mapping[str, Any], inputs: Any) -> Any:
        missing = [k for k in graph.params if k not in params]
        if missing:
            raise KeyError(
                f"forward: params lacks {len(missing)} initializer(s) of the graph, e.g. "
                f"{missing[:3]}; pass the params lower_onnx returned (or arrays of the same "
                "names and shapes)."
            )
        # a NumPy input is data, not a known constant: as a JAX array it is never folded
        feeds = {k: jnp.asarray(v) for k, v in _feeds(inputs, names).items()}
        outs = run_graph(graph, {k: params[k] for k in graph.params}, feeds)
        return outs[0] if len(outs) == 1 else outs

    return forward, params, graph


def _feeds(inputs: Any, names: list[str]) -> dict[str, Any]:
    if isinstance(inputs, Mapping):
        unknown = sorted(set(inputs) - set(names))
        lacking = [n for n in names if n not in inputs]
        if unknown or lacking:
            raise ValueError(
                f"forward: inputs by name must be exactly the graph's inputs {names}; got "
                f"{sorted(inputs)}. Fix: pass a dict with those keys."
            )
        return dict(inputs)
    leaves = list(inputs) if isinstance(inputs, (tuple, list)) else [inputs]
    if len(leaves) != len(names):
        raise ValueError(
            f"forward: the graph takes {len(names)} input(s) {names}, got {len(leaves)}. Fix: "
            "pass one array per input (a tuple in graph order, or a dict by name)."
        )
    return dict(zip(names, leaves, strict=True))
