"""`build(spec)`: any spec (record, registry name, or dict) to an `Adapter`.

Each source has one small builder in ``adapters/_src/sources/``; `register_source` adds one
for a new spec type. Output transforms of the spec are applied inside ``forward``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

import specs

from .adapter import Adapter
from .errors import BuildError

Builder = Callable[[Any], Adapter]

#: spec type -> import path of its builder (imported on first use, so that building a timm
#: spec never imports transformers or flax)
_BUILTIN: dict[type, str] = {
    specs.ModuleSpec: "adapters._src.sources.module:build_module",
    specs.FunctionSpec: "adapters._src.sources.function:build_function",
    specs.TimmSpec: "adapters._src.sources.timm:build_timm",
    specs.TorchHubSpec: "adapters._src.sources.torch_hub:build_torch_hub",
    specs.HuggingFaceSpec: "adapters._src.sources.huggingface:build_huggingface",
    specs.RegistrySpec: "adapters._src.sources.registry:build_registry",
    specs.CustomSpec: "adapters._src.sources.custom:build_custom",
    specs.FlaxSpec: "adapters._src.sources.flax:build_flax",
    specs.OnnxSpec: "adapters._src.onnx:build_onnx",
}
_CUSTOM: dict[type, Builder] = {}

RUNTIMES = ("torch", "onnxruntime")


def register_source(spec_type: type, builder: Builder, *, overwrite: bool = False) -> None:
    """Teach `build` a new kind of source.

    Args:
        spec_type: the (frozen attrs) record type describing the source.
        builder: ``builder(spec) -> Adapter``. It may call `build` for nested specs.
        overwrite: replace an existing builder for ``spec_type`` (built-ins included).

    Raises:
        TypeError: ``spec_type`` is not a class or ``builder`` is not callable.
        ValueError: ``spec_type`` already has a builder and ``overwrite`` is false.

    Example:
        >>> @attrs.frozen
        ... class RandomProjection:
        ...     dim: int
        ...     transforms: tuple = ()
        >>> adapters.register_source(RandomProjection, build_random_projection)
        >>> adapters.build(RandomProjection(dim=8))
    """
    if not isinstance(spec_type, type):
        raise TypeError(
            f"register_source: spec_type must be a class (a spec record type), got "
            f"{spec_type!r} ({type(spec_type).__name__})."
        )
    if not callable(builder):
        raise TypeError(
            f"register_source: builder must be callable as builder(spec) -> Adapter, got "
            f"{builder!r} ({type(builder).__name__})."
        )
    if not overwrite and (spec_type in _CUSTOM or spec_type in _BUILTIN):
        raise ValueError(
            f"register_source: {spec_type.__name__} already has a builder. Pass "
            "overwrite=True to replace it."
        )
    _CUSTOM[spec_type] = builder


def _builder(spec: Any) -> Builder:
    kind = type(spec)
    if kind in _CUSTOM:
        return _CUSTOM[kind]
    if kind in _BUILTIN:
        module_name, name = _BUILTIN[kind].split(":")
        return getattr(importlib.import_module(module_name), name)
    known = sorted({t.__name__ for t in (*_BUILTIN, *_CUSTOM)})
    raise BuildError(
        "spec",
        f"no builder for {kind.__name__}",
        expected=f"a spec record ({', '.join(known)}), a registry name, or a dict",
        got=spec,
        fix="Register one with adapters.register_source(spec_type, builder)",
    )


def as_spec(spec: Any) -> Any:
    """A registry name becomes a `RegistrySpec`, a dict goes through ``specs.structure``."""
    if isinstance(spec, str):
        return specs.RegistrySpec(model_name=spec)
    if isinstance(spec, Mapping):
        structure = getattr(specs, "structure", None)
        if structure is None:
            raise BuildError(
                "spec",
                "building from a dict needs specs.structure, which this install lacks",
                fix="Construct the spec record directly, e.g. specs.TimmSpec(...)",
            )
        return structure(spec)
    return spec


def build(spec: Any, *, runtime: str = "torch", example_input: Any = None) -> Adapter:
    """Build a backbone adapter: a pure ``forward(params, x)`` plus its ``params``.

    Args:
        spec: a spec record (``specs.TimmSpec(...)``, ...), a registry name
            (``"universal/vit_small_patch16_224_random"``, ``"timm/resnet18"``), or a dict
            in the ``specs`` format (``{"source": "timm", "model_name": ...}``).
        runtime: ``"torch"`` runs the model as loaded; ``"onnxruntime"`` exports a torch
            backbone to ONNX and serves it with ONNX Runtime.
        example_input: the input traced by the ONNX export (``runtime="onnxruntime"`` only);
            default: zeros of the model's known input shape (``adapter.info["input_shape"]``).

    Returns:
        An `Adapter`; ``adapter(x)`` is ``adapter.forward(adapter.params, x)``. For torch
        sources ``x`` is a ``(batch, channels, height, width)`` tensor and the output is what
        the model returns, passed through the spec's ``transforms`` (e.g. ``(batch, dim)``
        CLS features).

    Raises:
        BuildError: the spec cannot be built; the message names the field at fault.
        specs.SpecError: a dict spec is invalid.

    Example:
        >>> backbone = adapters.build(specs.TimmSpec("vit_tiny_patch16_224", pretrained=False))
        >>> features = backbone(torch.randn(2, 3, 224, 224))   # (2, 192)
    """
    if runtime not in RUNTIMES:
        raise BuildError(
            "runtime",
            f"unknown runtime {runtime!r}",
            expected=f"one of {', '.join(RUNTIMES)}",
            got=runtime,
        )
    spec = as_spec(spec)
    adapter = _builder(spec)(spec)
    if not isinstance(adapter, Adapter):
        raise BuildError(
            "spec",
            f"the builder for {type(spec).__name__} returned {type(adapter).__name__}, "
            "not an adapters.Adapter",
            fix="Make the builder return adapters.Adapter(forward=..., params=..., spec=...)",
        )
    if runtime == "onnxruntime":
        from .ort_runtime import serve_with_onnxruntime

        example = example_input
        if example is None:
            shape = adapter.info.get("input_shape")
            if shape is None:
                raise BuildError(
                    "example_input",
                    "serving with onnxruntime needs an example input, and this model does not "
                    "declare its input shape",
                    fix="Pass example_input=torch.randn(1, 3, 224, 224) (your input shape)",
                )
            import torch

            example = torch.zeros(tuple(shape))
        adapter = serve_with_onnxruntime(adapter, example)
    return adapter


def output_transform(spec: Any) -> Callable[[Any], Any] | None:
    """The spec's ``transforms`` composed into one function (None when there are none)."""
    records = tuple(getattr(spec, "transforms", ()) or ())
    if not records:
        return None
    from adapters import transforms

    return transforms.from_specs(records)
