"""The op table: ``TABLE`` (op name -> JAX function), the ``op`` decorator that fills it, and
the per-op refusals the build-time check asks.

A name is ``str(torch.ops.aten.add.Tensor)`` (``"aten.add.Tensor"``) or, for the Python and
symbolic-size calls in a graph, ``"operator.mul"``, ``"torch.sym_max"``, ``"math.ceil"``
(see `op_name`). Each name is registered once: a second registration is an error, so two
family modules cannot silently disagree about one op.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from typing import Any

import torch

#: op name -> its JAX function (filled by the family modules' ``@op``)
TABLE: dict[str, Callable[..., Any]] = {}
#: the same, read-only: what the public ``interop.lowering.OPS`` shows
OPS: Mapping[str, Callable[..., Any]] = types.MappingProxyType(TABLE)
#: op name -> ``refuses(node)``: why this use of the op cannot be lowered, or None
REFUSALS: dict[str, Callable[[torch.fx.Node], str | None]] = {}
#: ops kept whole when the exported graph is decomposed to core ATen (``decompose=False``)
KEEP: set[str] = set()
#: ops whose function takes ``recorded=``, the output torch recorded (``recorded=True``)
RECORDED: set[str] = set()
#: ops drawing random numbers (``random=``): the interpreter passes each node its own key
RANDOM: set[str] = set()
#: op name -> ``draws(node)``, for a random op that draws only in some uses (see `draws`)
DRAWS: dict[str, Callable[[torch.fx.Node], bool]] = {}


def op(
    *names: str,
    refuses: Callable[[torch.fx.Node], str | None] | None = None,
    decompose: bool = True,
    recorded: bool = False,
    random: bool | Callable[[torch.fx.Node], bool] = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a JAX function under one or more op names.

    The function takes the op's arguments as ``torch.export`` records them (JAX arrays in
    place of tensors, Python scalars, lists, ``torch.dtype``), with the ATen schema's
    defaults as Python defaults, and returns JAX arrays (a tuple for several outputs).

    Args:
        names: the op names, e.g. ``"aten.add.Tensor", "aten.add.Scalar"``.
        refuses: for an op lowered only in some uses: given the graph node, the reason this
            use cannot be lowered (e.g. ``"its indices output"``), or None when it can. The
            build-time check lists a refused node with the missing ops.
        decompose: False to keep the op whole where torch would decompose it (the
            function is faster than the decomposition, or the decomposition depends on
            the device); the graph then calls the function with the op itself.
        recorded: True for an op whose output shape the arguments do not fix (``nonzero``):
            the function also takes ``recorded=``, the node's output as torch recorded it
            (a fake tensor, or a tuple of them), whose shape torch.export's guards made static.
        random: True when the op draws random numbers: the function takes a keyword-only
            ``key`` (a ``jax.random`` key, one per graph node, derived from the key the
            train-mode ``forward`` is given); eval mode (no key) refuses the op. Or, for an op
            drawing only in some uses (dropout with ``train=False`` does not), a function of
            the graph node saying whether this one draws: eval mode refuses only those, and
            the others get ``key=None``.

    Raises:
        ValueError: a name is already registered.

    Example:
        >>> @op("mylib.softclip.default")  # a torch custom op, mylib::softclip
        ... def softclip(x):
        ...     return jnp.tanh(x)
    """

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        for name in names:
            if name in TABLE:
                old = TABLE[name]
                raise ValueError(
                    f"op: {name!r} is already registered (by {_describe(old)}); got a second "
                    f"function {_describe(fn)}. Fix: keep one of them (one function per op)."
                )
            TABLE[name] = fn
            if refuses is not None:
                REFUSALS[name] = refuses
            if not decompose:
                KEEP.add(name)
            if recorded:
                RECORDED.add(name)
            if random:
                RANDOM.add(name)
            if callable(random):
                DRAWS[name] = random
        return fn

    return register


def _describe(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def op_name(target: Any) -> str:
    """The table key of a graph node's target (``"aten.add.Tensor"``, ``"operator.getitem"``)."""
    if isinstance(target, torch._ops.OpOverload):
        return str(target)
    module = getattr(target, "__module__", None) or ""
    name = getattr(target, "__name__", repr(target))
    if module in ("_operator", "operator"):
        return f"operator.{name}"
    if module.startswith("torch"):
        return f"torch.{name}"
    return f"{module}.{name}"


def draws(name: str, node: torch.fx.Node) -> bool:
    """Whether ``node`` (of op ``name``) draws random numbers (needs a key)."""
    return name in RANDOM and (name not in DRAWS or bool(DRAWS[name](node)))


def refusal(name: str, node: torch.fx.Node) -> str | None:
    """Why the table cannot lower ``node`` (of op ``name``), or None when it can."""
    if name not in TABLE:
        return name
    why = REFUSALS[name](node) if name in REFUSALS else None
    return f"{name} ({why})" if why else None
