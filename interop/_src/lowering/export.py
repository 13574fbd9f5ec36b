"""``torch.export`` of a module for the lowering: eval (or train) mode, a dynamic batch axis,
and the graph decomposed to core ATen (keeping whole the ops the table asks to keep).

Nothing here knows an op: which ops stay whole is the table's ``decompose=False``.
"""

from __future__ import annotations

import torch
from torch.export._remove_effect_tokens_pass import _remove_effect_tokens
from torch.utils import _pytree as tpytree

from interop._src.lowering import ops as _ops
from interop._src.lowering.errors import LoweringError, mutates_state
from interop._src.lowering.mutation import mutated_state

#: the largest batch torch.export is told about (see `export`)
MAX_BATCH = 65535


def export(
    module: torch.nn.Module, args: tuple, dynamic_batch: bool, train: bool = False
) -> torch.export.ExportedProgram:
    """``torch.export`` in eval mode, or train mode when ``train`` (the module's mode is
    restored after), decomposed to core ATen.

    In train mode torch records what the forward draws at random (dropout, ...) and batch
    norm as ``_native_batch_norm_legit_functional``, whose updated running statistics are
    graph outputs of kind ``BUFFER_MUTATION`` (keyed by their ``state_dict`` names).

    Effect tokens are removed (as torch's own ``ExportedProgram.module()`` does): an
    effectful op such as ``aten._linalg_check_errors`` (``linalg.inv``'s singular-input
    check) becomes a plain node, which the table lowers like any other, instead of a
    ``with_effects`` call threading a token input and output through the graph.

    Raises:
        LoweringError: torch.export cannot capture the module (the message carries its reason).
    """
    was_training = module.training
    module.train(train)
    try:
        if dynamic_batch:
            args, dyn = _batch_dynamic(args)
        else:
            dyn = None
        with torch.no_grad():
            ep = torch.export.export(module, args, dynamic_shapes=dyn)
            return _remove_effect_tokens(ep.run_decompositions(decompositions()))
    except LoweringError:
        raise
    except Exception as err:  # torch.export's many error types all mean "cannot capture"
        raise LoweringError(_failed(module, args, dynamic_batch, err)) from err
    finally:
        module.train(was_training)


def _failed(module: torch.nn.Module, args: tuple, dynamic_batch: bool, err: Exception) -> str:
    """The message of a failed export: a forward writing its own state said first (torch's
    text for a write through ``.data`` is about fake tensors), then torch's reason."""
    name = type(module).__name__
    reason = str(err).strip().splitlines()[0].rstrip(".") if str(err).strip() else ""
    torch_says = f"torch.export.export failed with {type(err).__name__}: {reason}."
    mutated = mutated_state(module, args)
    if mutated:
        return f"{mutates_state(name, mutated)} {torch_says}"
    hint = (
        " If the batch axis cannot vary (a hard-coded batch size), lower with a fixed batch:"
        " dynamic_batch=False."
        if dynamic_batch
        else ""
    )
    return f"cannot lower {name} to JAX: {torch_says}{hint}"


def decompositions() -> dict:
    """torch's default core-ATen decompositions, less those of the ops the table keeps whole."""
    table = torch.export.default_decompositions()
    for name in _ops.KEEP:  # "aten.upsample_bicubic2d.vec" -> torch.ops.aten.upsample_...
        namespace, packet, overload = name.split(".")
        table.pop(getattr(getattr(getattr(torch.ops, namespace), packet), overload), None)
    return table


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
