"""``lower``: a torch module -> ``(forward, params)``, a pure JAX function and its JAX weights.

The route (see ``README.md``): `export` (torch.export, core ATen), `check` (every op in the
table), `interpreter` (the graph walk calling the table); here, around them, the params,
the lifted constants, the input checks and the output structure.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import torch
from torch.export.graph_signature import InputKind
from torch.utils import _pytree as tpytree

from interop._src.bridge import to_jax
from interop._src.dtypes import jax_dtype
from interop._src.lowering.check import check
from interop._src.lowering.errors import LoweringError
from interop._src.lowering.export import export
from interop._src.lowering.interpreter import interpreter
from interop._src.lowering.train import train_forward


def lower(
    module: torch.nn.Module,
    example_inputs: Any,
    *,
    dynamic_batch: bool = True,
    train: bool = False,
) -> tuple[Callable[..., Any], dict[str, jax.Array]]:
    """Lower a torch module into a pure JAX function and JAX params sharing the torch weights.

    The module is exported in eval mode (batch norm uses its running statistics, dropout is
    the identity), or in train mode when ``train``, and restored to its previous mode after.

    Args:
        module: the ``torch.nn.Module`` to lower.
        example_inputs: one tensor (or one dict of tensors), or a tuple of the module's
            positional inputs (tensors or pytrees of tensors, ``*args`` included), e.g.
            ``torch.randn(2, 3, 224, 224)``. Shapes and dtypes are fixed by it, except the
            leading batch axis when ``dynamic_batch``.
        dynamic_batch: let axis 0 of every input vary (one exported graph for all batch sizes).
        train: lower the module's train mode: dropout, drop-path and every random op
            (``rand*``, ``bernoulli``, ``normal``, ...) draw from a ``jax.random`` key, and batch
            norm normalises with the batch's statistics and updates its running ones.

    Returns:
        ``(forward, params)``. ``params`` is a flat dict keyed exactly like
        ``module.state_dict()``, JAX arrays sharing the tensors' memory on the CPU (64-bit
        integer buffers are narrowed copies unless ``jax_enable_x64``). ``forward(params, x)``
        is a pure JAX function; ``x`` has the structure of ``example_inputs`` (an array, or a
        tuple for several inputs). The output keeps the module's structure: an array, tuples,
        lists and dicts as such, and a HuggingFace ``ModelOutput`` as a plain ``dict`` of its
        non-None fields.

        With ``train``, ``forward(params, x, *, key=None) -> (y, new_buffers)``: ``key`` is a
        ``jax.random`` key (``jax.random.key(0)``; needed when the module draws random numbers;
        one key gives one output, each random op drawing from ``fold_in(key, its node)``), and
        ``new_buffers`` the buffers the forward updated (running mean / var, batch count), keyed
        by ``state_dict`` name like ``params``: ``{**params, **new_buffers}`` is the next step's
        params. The draws follow torch's distributions, not its random stream. ``params``
        share the module's memory, so running the torch module in train mode, which writes
        its running statistics in place, changes them too: copy them first to compare.

    Raises:
        LoweringError: the module cannot be exported, uses ops outside the table (all listed at
            once with the submodules using them), or mutates state in its forward (in train
            mode: state other than its persistent buffers); in eval mode, it draws random
            numbers (lower with ``train=True``).
        TypeError: ``module`` is not an ``nn.Module``, or ``train`` not a bool.

    Example:
        >>> model = timm.create_model("resnet18")
        >>> forward, params = interop.lower(model, torch.randn(2, 3, 224, 224))
        >>> y = jax.jit(forward)(params, jnp.ones((8, 3, 224, 224)))
        >>> step, params = interop.lower(model, x, train=True)
        >>> y, new_buffers = jax.jit(step)(params, x, key=jax.random.key(0))
    """
    if not isinstance(module, torch.nn.Module):
        raise TypeError(
            f"lower: expected module to be a torch.nn.Module, got {type(module).__name__}; "
            "wrap a function in an nn.Module whose forward calls it."
        )
    if not isinstance(train, bool):
        raise TypeError(f"lower: expected train to be True or False, got {train!r}.")
    args = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    ep = export(module, args, dynamic_batch, train)
    check(ep, type(module).__name__, train)
    state = module.state_dict()
    params = {k: _narrowed(k, v) for k, v in state.items()}
    constants = _constants(ep, state)
    run = interpreter(ep, constants)
    expected = _signature(args, dynamic_batch)
    out_spec = ep.call_spec.out_spec
    single = not isinstance(example_inputs, tuple)

    def inputs(x: Any) -> list[Any]:
        leaves, spec = tpytree.tree_flatten((x,) if single else tuple(x))
        _check_inputs(leaves, spec, expected)
        return leaves

    if train:
        outputs = functools.partial(_restructure, spec=out_spec)
        return train_forward(ep, type(module).__name__, state, run, inputs, outputs), params

    def forward(params: dict[str, Any], x: Any) -> Any:
        return _restructure(run(params, inputs(x)), out_spec)

    return forward, params


def _constants(ep: torch.export.ExportedProgram, state: dict[str, torch.Tensor]) -> dict:
    """Lifted constants and non-persistent buffers, as JAX constants closed over by forward."""
    out = {}
    for spec in ep.graph_signature.input_specs:
        if spec.kind == InputKind.CONSTANT_TENSOR or (
            spec.kind == InputKind.BUFFER and spec.target not in state
        ):
            out[spec.target] = _narrowed(spec.target, ep.constants[spec.target])
        elif spec.kind in (InputKind.PARAMETER, InputKind.BUFFER):
            if spec.target not in state:
                raise LoweringError(
                    f"the exported graph reads {spec.target!r}, which module.state_dict() lacks"
                )
        elif spec.kind != InputKind.USER_INPUT:
            raise LoweringError(f"cannot lower an input of kind {spec.kind.name} ({spec.target})")
    return out


def _narrowed(name: str, tensor: torch.Tensor) -> jax.Array:
    """A param or constant as JAX holds it; int64 values beyond int32 without x64 refused."""
    try:
        return to_jax(tensor, downcast=True)
    except OverflowError as err:
        raise LoweringError(
            f"{name!r} is {tensor.dtype} with values beyond int32, which JAX holds it as "
            "unless jax_enable_x64 is on; call jax.config.update('jax_enable_x64', True) "
            f"before lowering ({err})"
        ) from err


def _signature(args: tuple, dynamic_batch: bool) -> tuple:
    leaves, spec = tpytree.tree_flatten(args)
    shapes = [
        (
            tuple(a.shape[1:]) if dynamic_batch and a.ndim else tuple(a.shape),
            jax_dtype(a.dtype),
        )
        if isinstance(a, torch.Tensor)
        else None
        for a in leaves
    ]
    return spec, shapes, dynamic_batch


def _check_inputs(leaves: list, spec: Any, expected: tuple) -> None:
    want_spec, want, dynamic_batch = expected
    if spec != want_spec:
        raise ValueError(
            f"forward: x has structure {spec}, expected the example inputs' {want_spec}; "
            "pass inputs shaped like the example given to lower (a tuple for several inputs)."
        )
    for i, (a, w) in enumerate(zip(leaves, want, strict=True)):
        if w is None:
            continue
        shape = tuple(a.shape[1:]) if dynamic_batch and a.ndim else tuple(a.shape)
        if shape != w[0] or a.dtype != w[1]:
            what = "shape[1:]" if dynamic_batch else "shape"
            raise ValueError(
                f"forward: input {i} has {what} {shape} and dtype {a.dtype}, expected {w[0]} "
                f"and {w[1]} (the example's); lower the module again with an example of this "
                "shape and dtype."
            )


def _restructure(leaves: list, spec: Any) -> Any:
    """Rebuild torch's output structure with JAX leaves (ModelOutput -> dict)."""
    it = iter(leaves)

    def build(s: Any) -> Any:
        if s.is_leaf():
            return next(it)
        kids = [build(c) for c in s.children()]
        if s.type in (tuple, list):
            return s.type(kids)
        if s.type is type(None):
            return None
        if isinstance(s.context, (list, tuple)) and len(s.context) == len(kids):
            if tpytree.is_namedtuple_class(s.type):
                return s.type(*kids)
            return dict(zip(s.context, kids, strict=True))  # dict, OrderedDict, ModelOutput
        if s.type is dict or issubclass(s.type, dict):
            return dict(zip(s.context, kids, strict=True))
        return tuple(kids)

    return build(spec)
