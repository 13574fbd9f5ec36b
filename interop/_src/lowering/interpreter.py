"""The interpreter: a walk over the exported graph calling the op table for each node.

The walk happens when JAX traces ``forward``; under ``jax.jit`` it runs once per input shape
and never again. It knows no op by name: each ``call_function`` node calls the table's
function for its op, and the result is cast to the dtype torch recorded for the node.

Randomness (train mode): an op registered ``random=`` gets ``key=fold_in(key, i)``, ``i``
the node's index in the graph, so each random node draws from its own stream, the same key
gives the same output, and nothing but the key varies the draws (``jit`` and ``vmap`` over
keys work).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import torch
from torch.export.graph_signature import InputKind
from torch.utils import _pytree as tpytree

from interop._src.dtypes import jax_dtype
from interop._src.lowering import ops as _ops
from interop._src.lowering.errors import LoweringError


def interpreter(
    ep: torch.export.ExportedProgram, constants: dict[str, jax.Array]
) -> Callable[..., list[Any]]:
    """A function ``(params, user_leaves, key=None) -> output_leaves`` walking ``ep``'s graph.

    The outputs are every output of the graph, in its order (in train mode the updated
    buffers come first, see ``ep.graph_signature.output_specs``). ``key`` (a ``jax.random``
    key) is needed when the graph has a random op (`draws`).
    """
    kinds = {s.arg.name: s for s in ep.graph_signature.input_specs}
    nodes = list(ep.graph.nodes)

    def run(params: dict[str, jax.Array], leaves: list[Any], key: Any = None) -> list[Any]:
        env: dict[torch.fx.Node, Any] = {}
        user = iter(leaves)

        def value(a: Any) -> Any:
            return env[a] if isinstance(a, torch.fx.Node) else a

        for index, node in enumerate(nodes):
            if node.op == "placeholder":
                spec = kinds[node.name]
                if spec.kind == InputKind.USER_INPUT:
                    env[node] = next(user)
                elif spec.target in constants:
                    env[node] = constants[spec.target]
                else:
                    env[node] = params[spec.target]
            elif node.op == "call_function":
                args = tpytree.tree_map_only(torch.fx.Node, value, node.args)
                kwargs = tpytree.tree_map_only(torch.fx.Node, value, node.kwargs)
                name = _ops.op_name(node.target)
                if name in _ops.RECORDED:  # an output shape only torch's record fixes
                    kwargs = {**kwargs, "recorded": node.meta.get("val")}
                if name in _ops.RANDOM:
                    if key is None and _ops.draws(name, node):
                        raise LoweringError(f"{name} draws random numbers and no key was given")
                    mine = None if key is None else jax.random.fold_in(key, index)
                    kwargs = {**kwargs, "key": mine}
                out = _ops.TABLE[name](*args, **kwargs)
                env[node] = _cast(out, node.meta.get("val"))
            elif node.op == "output":
                return [value(a) for a in node.args[0]]
        raise LoweringError("the exported graph has no output node")

    return run


def draws(ep: torch.export.ExportedProgram) -> list[str]:
    """The random ops ``ep``'s graph calls where they draw (``ops.draws``), in order, once each."""
    nodes = (n for n in ep.graph.nodes if n.op == "call_function")
    names = (_ops.op_name(n.target) for n in nodes if _ops.draws(_ops.op_name(n.target), n))
    return list(dict.fromkeys(names))


def _cast(value: Any, meta: Any) -> Any:
    """Cast a result to the dtype torch recorded for it: torch's type promotion, exactly."""
    if isinstance(meta, torch.Tensor) and isinstance(value, jax.Array):
        want = jax_dtype(meta.dtype)
        return value if value.dtype == want else value.astype(want)
    if isinstance(meta, (list, tuple)) and isinstance(value, (list, tuple)):
        return type(value)(_cast(v, m) for v, m in zip(value, meta, strict=False))
    return value
