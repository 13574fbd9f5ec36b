"""`CustomSpec`: the functional replacement for subclassing eva's ``BaseModel``.

The user names a loader (called with ``arguments``) and, optionally, a pure forward:

- the loader returns an ``nn.Module``: it becomes a torch adapter like any other;
- the loader returns an `Adapter`: used as is (the spec's transforms are added);
- the loader returns params and ``forward`` names ``forward(params, x)``: the adapter is
  that pair.

``device``: a module is moved there like any torch source; params for a named ``forward``
(torch tensors and JAX arrays) are copied there; a ready-made `Adapter` cannot be moved, so
its params must already be there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import torch

import specs

from ..adapter import Adapter
from ..devices import jax_device, off_device, resolve_device
from ..errors import BuildError
from ..imports import call_with, import_object
from ..transforms.of_spec import output_transform
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


def _to_device(params: Any, device: str) -> Any:
    """``params`` with every torch tensor and JAX array copied to ``device``."""
    import jax

    leaves = jax.tree_util.tree_leaves(params)
    torch_dev = resolve_device(device) if any(isinstance(v, torch.Tensor) for v in leaves) else None
    jax_dev = jax_device(device) if any(isinstance(v, jax.Array) for v in leaves) else None

    def move(v: Any) -> Any:
        if isinstance(v, torch.Tensor):
            return v.to(torch_dev)
        if isinstance(v, jax.Array):
            return jax.device_put(v, jax_dev)
        return v

    return jax.tree_util.tree_map(move, params)


def build_custom(spec: specs.CustomSpec, *, device: str | None = None) -> Adapter:
    """Call the loader; wrap what it returns (see module docs), on ``device``."""
    load = import_object(spec.load, "load")
    loaded = call_with(load, spec.arguments, "arguments", spec.load)
    post = output_transform(spec)
    if spec.forward is None:
        if isinstance(loaded, torch.nn.Module):
            return finish(loaded, spec, info={"input_shape": input_shape_of(loaded)}, device=device)
        if isinstance(loaded, Adapter):
            elsewhere = off_device(loaded.params, device) if device is not None else []
            if elsewhere:
                raise BuildError(
                    "device",
                    f"loader {spec.load!r} returned an adapters.Adapter with params on "
                    f"{', '.join(elsewhere)}, not {device}, and a built Adapter cannot be moved",
                    fix="Make the loader return the nn.Module (build moves it), or build its "
                    f"Adapter with device={device!r}",
                )
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
        params=loaded if device is None else _to_device(loaded, device),
        spec=spec,
        framework=_framework(loaded),
        info={"loader": spec.load},
    )


# the source's entry points, found by its tag (adapters/_src/sources/table.py)
build = build_custom
