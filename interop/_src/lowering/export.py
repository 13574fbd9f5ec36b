"""``lower``: a torch module -> ``(forward, params)``, a pure JAX function and its JAX weights.

The route: ``torch.export.export`` on the example inputs (batch axis dynamic), then
``run_decompositions()`` to the core ATen opset (keeping a few ops the table implements
directly, faster than their decompositions), then a walk over the graph that calls
``ops.TABLE`` for each node. The walk happens when JAX traces ``forward``; under ``jax.jit``
it runs once per input shape and never again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import jax
import torch
from torch.export.graph_signature import InputKind, OutputKind
from torch.utils import _pytree as tpytree

from interop._src.dtypes import jax_dtype
from interop._src.lowering import ops as _ops
from interop._src.lowering.errors import LoweringError, missing_ops_message

#: kept whole instead of decomposed: the table's versions are small matmuls / one fused
#: softmax, where the decompositions are gathers and mask bookkeeping. ``scaled_dot_product_
#: attention`` itself is kept because its decomposition picks a kernel by the example's device:
#: ``_scaled_dot_product_flash_attention_for_cpu`` on the CPU, but ``_efficient_attention`` /
#: ``_flash_attention`` / ``_cudnn_attention`` for a module on CUDA, so the graph would depend
#: on where the torch module lives
_KEEP = (
    torch.ops.aten.upsample_bicubic2d.vec,
    torch.ops.aten.scaled_dot_product_attention.default,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu.default,
)


#: the largest batch torch.export is told about (see `export`)
MAX_BATCH = 65535


def export(
    module: torch.nn.Module, args: tuple, dynamic_batch: bool
) -> torch.export.ExportedProgram:
    """``torch.export`` in eval mode (restored after), decomposed to core ATen.

    Raises:
        LoweringError: torch.export cannot capture the module (the message carries its reason).
    """
    was_training = module.training
    module.eval()
    try:
        if dynamic_batch:
            args, dyn = _batch_dynamic(args)
        else:
            dyn = None
        with torch.no_grad():
            ep = torch.export.export(module, args, dynamic_shapes=dyn)
            table = torch.export.default_decompositions()
            for o in _KEEP:
                table.pop(o, None)
            return ep.run_decompositions(table)
    except LoweringError:
        raise
    except Exception as err:  # torch.export's many error types all mean "cannot capture"
        hint = (
            " If the batch axis cannot vary (a hard-coded batch size), pass dynamic_batch=False."
            if dynamic_batch
            else ""
        )
        raise LoweringError(
            f"cannot lower {type(module).__name__} to JAX: torch.export.export failed with "
            f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}.{hint} "
            "Alternatives: run it in torch (runtime='torch'), or call torch from JAX with "
            "interop.jax_function."
        ) from err
    finally:
        module.train(was_training)


def _batch_dynamic(args: tuple) -> tuple[tuple, torch.export.ShapesCollection]:
    """``args`` (a size-1 batch doubled) and ``dynamic_shapes`` making axis 0 of each tensor
    the one ``batch`` dimension.

    The shapes are keyed by tensor (``ShapesCollection``), so torch.export matches them to
    the signature itself: several positional inputs, ``*args``, dicts and nested tuples alike.
    """
    flat = [a for a in tpytree.tree_leaves(args) if isinstance(a, torch.Tensor)]
    if flat and flat[0].ndim and flat[0].shape[0] == 1:
        # a size-1 example would specialise the batch axis to 1: export on two copies
        args = tpytree.tree_map_only(
            torch.Tensor, lambda a: torch.cat([a, a]) if a.ndim else a, args
        )
    # bounded: on CUDA, torch's kernels guard the batch at 65535 (the grid's y/z limit;
    # ResNet's convolutions / batch norms), which an unbounded Dim violates. The graph's ops do
    # not depend on it, so the JAX function takes any batch.
    batch = torch.export.Dim("batch", max=MAX_BATCH)
    dyn = torch.export.ShapesCollection()
    for a in tpytree.tree_leaves(args):
        if isinstance(a, torch.Tensor) and a.ndim:
            dyn[a] = {0: batch}
    return args, dyn


def _where(node: torch.fx.Node) -> str:
    """``"blocks.0.attn (Attention)"``: the innermost submodule a node comes from."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return "<top level>"
    path, cls = list(stack.values())[-1]
    cls_name = cls if isinstance(cls, str) else getattr(cls, "__name__", str(cls))
    return f"{path or '<root>'} ({cls_name.rsplit('.', 1)[-1]})"


def check(ep: torch.export.ExportedProgram, module_name: str) -> None:
    """Every node lowers, or one ``LoweringError`` naming every missing op and where it is used."""
    missing: dict[str, Counter] = {}
    for node in ep.graph.nodes:
        problem = None
        if node.op == "call_function":
            problem = _ops.refusal(_ops.op_name(node.target), node)
        elif node.op == "get_attr":
            problem = f"get_attr {node.target} (a higher-order op's subgraph)"
        if problem:
            missing.setdefault(problem, Counter())[_where(node)] += 1
    mutated = [
        s.target for s in ep.graph_signature.output_specs if s.kind != OutputKind.USER_OUTPUT
    ]
    if missing or mutated:
        raise LoweringError(missing_ops_message(module_name, missing, mutated))


def _cast(value: Any, meta: Any) -> Any:
    """Cast a result to the dtype torch recorded for it: torch's type promotion, exactly."""
    if isinstance(meta, torch.Tensor) and isinstance(value, jax.Array):
        want = jax_dtype(meta.dtype)
        return value if value.dtype == want else value.astype(want)
    if isinstance(meta, (list, tuple)) and isinstance(value, (list, tuple)):
        return type(value)(_cast(v, m) for v, m in zip(value, meta, strict=False))
    return value


def interpreter(
    ep: torch.export.ExportedProgram, constants: dict[str, jax.Array]
) -> Callable[[dict[str, jax.Array], list[Any]], list[Any]]:
    """A function ``(params, user_leaves) -> output_leaves`` walking ``ep``'s graph."""
    kinds = {s.arg.name: s for s in ep.graph_signature.input_specs}
    nodes = list(ep.graph.nodes)

    def run(params: dict[str, jax.Array], leaves: list[Any]) -> list[Any]:
        env: dict[torch.fx.Node, Any] = {}
        user = iter(leaves)

        def value(a: Any) -> Any:
            return env[a] if isinstance(a, torch.fx.Node) else a

        for node in nodes:
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
                out = _ops.TABLE[_ops.op_name(node.target)](*args, **kwargs)
                env[node] = _cast(out, node.meta.get("val"))
            elif node.op == "output":
                return [value(a) for a in node.args[0]]
        raise LoweringError("the exported graph has no output node")

    return run
