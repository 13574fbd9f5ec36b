"""The ONNX op table: ``TABLE`` (op type -> `OpDef`), the ``onnx_op`` decorator that fills it.

An op function takes ``(node, *inputs)``: ``node`` a `Node` (its attributes with the op's
defaults filled in, its name, how many outputs the graph reads, the graph's opset, and ``xp``,
the array module the inputs call for) and the node's inputs in order (None for an omitted
optional input). It returns one array, or a tuple for several outputs.

Two kinds of values flow through a graph: JAX arrays (what the user's input and the params
make) and NumPy arrays known while tracing (constants, integer initializers, shapes, and what
is computed from them alone). A shape must be known while tracing, so an op input that
decides a shape (``Reshape``'s ``shape``, ``Slice``'s ``starts``, ...) is named in
``static=`` and the check refuses a graph that computes it from data. A node whose inputs are
all known is evaluated while tracing and stays known (``fold=``); a symbolic batch size
(``jax.export``) rides in such NumPy arrays as an object element.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from typing import Any

import attrs


@attrs.frozen
class OpDef:
    """One registration: the function, the input positions that must be known while tracing,
    whether known inputs fold in NumPy, and the attributes' defaults."""

    fn: Callable[..., Any]
    static: tuple[int, ...]
    fold: str
    defaults: Mapping[str, Any]
    refuses: Callable[[Mapping[str, Any], int], str | None] | None


@attrs.frozen
class Node:
    """What an op function learns of its node besides its inputs."""

    op_type: str
    name: str
    attrs: Mapping[str, Any]
    n_outputs: int
    opset: int
    xp: Any

    def __getitem__(self, key: str) -> Any:
        return self.attrs[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)


#: op type -> its registration (filled by the family modules' ``@onnx_op``)
TABLE: dict[str, OpDef] = {}
#: the same, read-only
OPS: Mapping[str, OpDef] = types.MappingProxyType(TABLE)


def onnx_op(
    *op_types: str,
    static: tuple[int, ...] = (),
    fold: str = "jax",
    refuses: Callable[[Mapping[str, Any], int], str | None] | None = None,
    **defaults: Any,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a JAX function under one or more ONNX op types (default domain).

    Args:
        op_types: e.g. ``"Relu"``.
        static: input positions that must be known while tracing (shapes, axes, sizes).
        fold: how a node whose inputs are all known runs: ``"jax"`` (the default: the JAX
            function, evaluated while tracing, its result known), ``"numpy"`` (the function
            written for both array modules, called with ``node.xp = numpy``: what shape
            arithmetic needs, int64 bounds and symbolic sizes included), ``"shape"`` (the op
            reads only its input's shape: its result is known even for a traced input).
        refuses: given the node's attributes (defaults filled) and how many outputs the graph
            reads, why this use cannot be lowered, or None; the build-time check lists it.
        defaults: the attributes' defaults from the ONNX operator schema.

    Raises:
        ValueError: an op type is already registered.
    """

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        for name in op_types:
            if name in TABLE:
                raise ValueError(
                    f"onnx_op: {name!r} is already registered (by {TABLE[name].fn.__qualname__});"
                    f" got a second function {fn.__qualname__}. Fix: keep one of them."
                )
            TABLE[name] = OpDef(fn, tuple(static), fold, dict(defaults), refuses)
        return fn

    return register
