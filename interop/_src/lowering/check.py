"""The build-time check: every node of the exported graph lowers, or one ``LoweringError``
naming every missing (or refused) op with the submodules using it, and any state the forward
mutates.

Nothing here knows an op: an op is missing when the table lacks its name, refused when its
registration's ``refuses(node)`` gives a reason. In eval mode a use of a random op that draws
(``ops.draws``) is refused too (``forward(params, x)`` has no key to draw with); in train mode the forward may
update buffers (``forward`` returns them), and nothing else. A node (or input) whose
value torch records in a dtype JAX has no equivalent for (``complex32``) is refused whatever its op.
"""

from __future__ import annotations

from collections import Counter

import torch
from torch.export.graph_signature import OutputKind
from torch.utils import _pytree as tpytree

from interop._src.dtypes import TORCH_TO_NAME, no_jax_dtype
from interop._src.lowering import ops as _ops
from interop._src.lowering.errors import LoweringError, missing_ops_message

#: why eval mode refuses a random op
_NO_KEY = (
    "draws random numbers: eval mode's forward(params, x) takes no key; lower with train=True "
    "for forward(params, x, *, key)"
)


def check(ep: torch.export.ExportedProgram, module_name: str, train: bool = False) -> None:
    """Every node lowers, or one ``LoweringError`` naming every missing op and where it is used.

    ``train``: the graph was exported in train mode (random ops and buffer updates allowed).
    """
    missing: dict[str, Counter] = {}
    for node in ep.graph.nodes:
        problem = None
        if node.op == "call_function":
            name = _ops.op_name(node.target)
            problem = _ops.refusal(name, node) or _dtype_problem(name, node)
            if problem is None and not train and _ops.draws(name, node):
                problem = f"{name} ({_NO_KEY})"
        elif node.op == "placeholder":
            problem = _dtype_problem(f"input {node.name}", node)
        elif node.op == "get_attr":
            problem = f"get_attr {node.target} (a higher-order op's subgraph)"
        if problem:
            missing.setdefault(problem, Counter())[_where(node)] += 1
    allowed = (OutputKind.USER_OUTPUT, OutputKind.BUFFER_MUTATION) if train else ()
    mutated = [
        s.target
        for s in ep.graph_signature.output_specs
        if s.kind != OutputKind.USER_OUTPUT and s.kind not in allowed
    ]
    if missing or mutated:
        raise LoweringError(missing_ops_message(module_name, missing, mutated))


def _dtype_problem(name: str, node: torch.fx.Node) -> str | None:
    """``"aten.view_as_complex.default (torch.complex32 has no JAX dtype ...)"`` for a node
    whose value torch records in a dtype JAX lacks, else None."""
    for val in tpytree.tree_leaves(node.meta.get("val")):
        if isinstance(val, torch.Tensor) and val.dtype not in TORCH_TO_NAME:
            return f"{name} ({no_jax_dtype(val.dtype)})"
    return None


def _where(node: torch.fx.Node) -> str:
    """``"blocks.0.attn (Attention)"``: the innermost submodule a node comes from."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return "<top level>"
    path, cls = list(stack.values())[-1]
    cls_name = cls if isinstance(cls, str) else getattr(cls, "__name__", str(cls))
    return f"{path or '<root>'} ({cls_name.rsplit('.', 1)[-1]})"
