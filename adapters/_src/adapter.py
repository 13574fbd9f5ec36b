"""The `Adapter` record: a pure ``forward(params, x)`` closure, its ``params`` and its spec."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypedDict

import attrs


class AdapterInfo(TypedDict, total=False):
    """The documented keys of `Adapter.info` (every key optional; a user's builder may add
    its own). Sources fill them once, at build time.

    Attributes:
        device: where the params live (``"cpu"``, ``"cuda:0"``; None if spread), torch and Flax.
        input_shape: ``(1, C, H, W)`` the model expects, when its config says.
        preprocess: the backbone's own preprocessing (``adapters._src.preprocess.Preprocess``):
            timm's data config, a HuggingFace ``preprocessor_config.json``, an ONNX input shape.
        output: ``"model"`` (the model's own output) or ``"feature_maps"`` (timm out_indices).
        module_class: ``"package.module.Class"`` of a torch module.
        registry, registry_spec: the registry name and the `RegistrySpec` it was built from.
        loader: a `CustomSpec`'s loader path.
        inputs, outputs, providers: an ONNX model's signature and ONNX Runtime providers.
        runtime, onnx_path, cache, cache_key, parity, fusions: a backbone served by
            ``to_onnxruntime`` (see ``adapters/_src/runtimes/onnxruntime/serve.py``); ``runtime``,
            ``cache``, ``cache_key`` and ``device`` (the params' JAX device) also of a backbone
            lowered by ``lower_to_jax``.
        jax_path: the ``jax.export`` artifact a ``lower_to_jax`` backbone is cached as (see
            ``adapters/_src/runtimes/jax/lower.py``).
    """

    device: str | None
    input_shape: tuple[int, ...] | None
    preprocess: Any
    output: str
    module_class: str
    registry: str
    registry_spec: Any
    loader: str
    inputs: tuple[Any, ...]
    outputs: tuple[Any, ...]
    providers: tuple[str, ...]
    runtime: str
    onnx_path: str
    jax_path: str
    cache: str
    cache_key: str
    parity: Mapping[str, Any]
    fusions: Mapping[str, int]


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
        info: metadata filled by the source at build time; its keys are documented by
            `AdapterInfo` (device, input_shape, preprocess, output, ...).

    Example:
        >>> backbone = adapters.build("universal/vit_tiny_patch16_224_random")
        >>> y = backbone.forward(backbone.params, x)   # the same as backbone(x)
    """

    forward: Callable[[Mapping[str, Any], Any], Any]
    params: Mapping[str, Any]
    spec: Any
    framework: str = "torch"
    module: Any = None
    info: AdapterInfo | Mapping[str, Any] = attrs.field(factory=dict)

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
