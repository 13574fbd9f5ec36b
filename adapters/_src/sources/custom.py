"""`CustomSpec`: the functional replacement for subclassing eva's ``BaseModel``.

The user names a loader (called with ``arguments``) and, optionally, a pure forward:

- the loader returns an ``nn.Module``: it becomes a torch adapter like any other;
- the loader returns an `Adapter`: used as is (the spec's transforms are added);
- the loader returns params and ``forward`` names ``forward(params, x)``: the adapter is
  that pair.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import torch

import specs

from ..adapter import Adapter
from ..build import output_transform
from ..errors import BuildError
from ..imports import call_with, import_object
from ._torch import finish, input_shape_of


def _compose(forward: Callable[[Any, Any], Any], post: Callable[[Any], Any] | None) -> Any:
    if post is None:
        return forward

    def composed(params: Any, x: Any) -> Any:
        return post(forward(params, x))

    return composed


def _framework(params: Any) -> str:
    import jax

    leaves = jax.tree_util.tree_leaves(params)
    if any(isinstance(v, torch.Tensor) for v in leaves):
        return "torch"
    if any(isinstance(v, jax.Array) for v in leaves):
        return "jax"
    return "custom"


def build_custom(spec: specs.CustomSpec) -> Adapter:
    """Call the loader; wrap what it returns (see module docs)."""
    load = import_object(spec.load, "load")
    loaded = call_with(load, spec.arguments, "arguments", spec.load)
    post = output_transform(spec)
    if spec.forward is None:
        if isinstance(loaded, torch.nn.Module):
            return finish(loaded, spec, info={"input_shape": input_shape_of(loaded)})
        if isinstance(loaded, Adapter):
            return attrs.evolve(loaded, forward=_compose(loaded.forward, post), spec=spec)
        raise BuildError(
            "forward",
            f"loader {spec.load!r} returned {type(loaded).__name__}, which needs a forward",
            fix="Name a pure forward(params, x) in 'forward', or make the loader return an "
            "nn.Module or an adapters.Adapter",
        )
    forward = import_object(spec.forward, "forward")
    if not callable(forward):
        raise BuildError("forward", f"{spec.forward!r} is not callable", got=forward)
    return Adapter(
        forward=_compose(forward, post),
        params=loaded,
        spec=spec,
        framework=_framework(loaded),
        info={"loader": spec.load},
    )
