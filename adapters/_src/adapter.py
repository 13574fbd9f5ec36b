"""The `Adapter` record: a pure ``forward(params, x)`` closure, its ``params`` and its spec."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs


@attrs.frozen(eq=False)
class Adapter:
    """A backbone as a pure function plus its parameters.

    Attributes:
        forward: ``forward(params, x) -> y``; the output depends only on ``params`` and ``x``
            (the spec's output transforms are applied inside).
        params: for torch sources a flat ``{name: tensor}`` dict (the keys of the module's
            ``state_dict()``); for Flax the variables pytree; empty for ONNX.
        spec: the spec record this adapter was built from.
        framework: ``"torch"``, ``"onnx"`` or ``"jax"``: what ``forward`` runs on.
        module: the object behind ``forward`` (an ``nn.Module`` in eval mode, an ONNX Runtime
            session, a Flax module), for inspection only; ``forward`` never mutates it.
        info: free-form metadata (output kind, feature dim, preprocessing defaults, ...).

    Example:
        >>> backbone = adapters.build("universal/vit_tiny_patch16_224_random")
        >>> y = backbone.forward(backbone.params, x)   # the same as backbone(x)
    """

    forward: Callable[[Mapping[str, Any], Any], Any]
    params: Mapping[str, Any]
    spec: Any
    framework: str = "torch"
    module: Any = None
    info: Mapping[str, Any] = attrs.field(factory=dict)

    def __repr__(self) -> str:
        # params can hold hundreds of tensors: show a summary, not the values
        count = len(self.params) if isinstance(self.params, Mapping) else "?"
        return (
            f"Adapter(framework={self.framework!r}, params=<{count} entries>, "
            f"module={type(self.module).__name__}, spec={self.spec!r})"
        )

    def __call__(self, x: Any) -> Any:
        """``forward(params, x)`` with this adapter's own params."""
        return self.forward(self.params, x)
