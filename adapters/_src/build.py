"""`build(spec)`: any spec (record, registry name, or dict) to an `Adapter`.

Each source has one small builder in ``adapters/_src/sources/``; `register_source` adds one
for a new spec type. Output transforms of the spec are applied inside ``forward``.

Devices. ``build(spec, device=...)`` hands a canonical device name (``"cpu"``, ``"cuda"``,
``"cuda:N"``) to builders that take a ``device`` keyword (all built-in torch and Flax ones);
a builder without one must already have put its params there, which `build` verifies. ONNX
specs carry their own ``device`` field, which must agree with the argument.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from collections.abc import Callable, Iterator, Mapping
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
    specs.OnnxSpec: "adapters._src.sources.onnx:build_onnx",
}
_CUSTOM: dict[type, Builder] = {}

RUNTIMES = ("torch", "onnxruntime")
#: spec types built into a torch ``nn.Module`` (CUDA is checked before the model is loaded)
_TORCH_SPECS: tuple[type, ...] = (
    specs.ModuleSpec,
    specs.FunctionSpec,
    specs.TimmSpec,
    specs.TorchHubSpec,
    specs.HuggingFaceSpec,
)
_DEVICE_RE = re.compile(r"(cpu|cuda)(?::(\d+))?")
_DEVICE_EXPECTED = "'cpu', 'cuda', 'cuda:N' (N a GPU index) or a torch.device of those"


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


def normalize_device(device: Any) -> str | None:
    """``device`` as a canonical name: ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (None stays None).

    Accepts those strings (``"cpu:0"`` is ``"cpu"``) and ``torch.device`` objects (anything
    with ``type`` and ``index``), without importing a framework: whether the device exists is
    checked by the builder that uses it.

    Raises:
        BuildError: not one of those forms (``"gpu"``, ``"mps"``, ``3``, ...).
    """
    if device is None:
        return None
    if isinstance(device, str):
        text = device.strip()
    elif isinstance(getattr(device, "type", None), str) and hasattr(device, "index"):
        index = device.index
        text = device.type if index is None else f"{device.type}:{index}"
    else:
        raise BuildError("device", "not a device", expected=_DEVICE_EXPECTED, got=device)
    match = _DEVICE_RE.fullmatch(text)
    if match is None:
        raise BuildError(
            "device",
            "not a device adapters can run on",
            expected=_DEVICE_EXPECTED,
            got=device,
            fix="Use 'cuda' for a GPU ('gpu' is not a torch device name)"
            if text.startswith("gpu")
            else None,
        )
    kind, index = match.group(1), match.group(2)
    if kind == "cpu" or index is None:
        return kind
    return f"cuda:{int(index)}"


def _takes_device(builder: Builder) -> bool:
    try:
        parameters = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return False
    p = parameters.get("device")
    return p is not None and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)


def leaf_devices(tree: Any) -> Iterator[str]:
    """The device names (``"cpu"``, ``"cuda:0"``) of torch tensors and JAX arrays in ``tree``."""
    if isinstance(tree, Mapping):
        for value in tree.values():
            yield from leaf_devices(value)
    elif isinstance(tree, (list, tuple)):
        for value in tree:
            yield from leaf_devices(value)
    elif "torch" in sys.modules and isinstance(tree, sys.modules["torch"].Tensor):
        yield str(tree.device)
    elif callable(getattr(tree, "devices", None)):  # a jax.Array
        for d in tree.devices():
            yield jax_device_name(d)


def jax_device_name(d: Any) -> str:
    """``"cpu"`` or ``"cuda:N"`` for a ``jax.Device`` (the names torch uses)."""
    return "cpu" if d.platform == "cpu" else f"cuda:{d.id}"


def off_device(params: Any, device: str) -> list[str]:
    """The devices, other than ``device``, holding arrays of ``params`` (sorted names)."""
    return sorted({d for d in leaf_devices(params) if not _on(d, device)})


def _on(found: str, device: str) -> bool:
    return found == device or (device == "cuda" and found.startswith("cuda:"))


def _check_placed(adapter: Adapter, device: str, spec: Any) -> Adapter:
    """``adapter`` if all its params are on ``device``, else a `BuildError`."""
    elsewhere = off_device(adapter.params, device)
    if elsewhere:
        raise BuildError(
            "device",
            f"the builder for {type(spec).__name__} takes no device argument and put the "
            f"params on {', '.join(elsewhere)}, not {device}",
            fix="Give the builder a device keyword (builder(spec, *, device=None) -> Adapter) "
            "that places the params, or leave device out",
        )
    return adapter


def _check_onnx_device(spec: specs.OnnxSpec, device: str) -> None:
    kind, _, index = device.partition(":")
    if kind != spec.device or index not in ("", "0"):
        raise BuildError(
            "device",
            f"device={device!r} conflicts with the ONNX spec's device {spec.device!r}"
            + (" (an ONNX spec runs on GPU 0 only)" if kind == spec.device else ""),
            fix=f"Set the spec's device field (device: {kind}) and leave the argument out, or "
            f"pass device={spec.device!r}",
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


def build(
    spec: Any, *, runtime: str = "torch", example_input: Any = None, device: Any = None
) -> Adapter:
    """Build a backbone adapter: a pure ``forward(params, x)`` plus its ``params``.

    Args:
        spec: a spec record (``specs.TimmSpec(...)``, ...), a registry name
            (``"universal/vit_small_patch16_224_random"``, ``"timm/resnet18"``), or a dict
            in the ``specs`` format (``{"source": "timm", "model_name": ...}``).
        runtime: ``"torch"`` runs the model as loaded; ``"onnxruntime"`` exports a torch
            backbone to ONNX and serves it with ONNX Runtime.
        example_input: the input traced by the ONNX export (``runtime="onnxruntime"`` only);
            default: zeros of the model's known input shape (``adapter.info["input_shape"]``).
        device: where the backbone runs: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a
            ``torch.device``; None (the default) leaves it where the source puts it (the CPU
            for every built-in source). A torch module and its params move there once, here;
            ``forward`` then expects inputs on that device and raises a ``ValueError`` naming
            the argument otherwise (it does not copy them over, see
            ``adapters/_src/torch_module.py``). Flax params are committed to the matching JAX
            device (``jax.devices("gpu")[N]`` for ``cuda:N``). An ONNX spec keeps its own
            ``device`` field; the argument may only repeat it. ``runtime="onnxruntime"``
            serves on the CPU.

    Returns:
        An `Adapter`; ``adapter(x)`` is ``adapter.forward(adapter.params, x)``. For torch
        sources ``x`` is a ``(batch, channels, height, width)`` tensor on the adapter's
        device (``adapter.info["device"]``) and the output is what the model returns, passed
        through the spec's ``transforms`` (e.g. ``(batch, dim)`` CLS features).

    Raises:
        BuildError: the spec cannot be built, or ``device`` is invalid, unavailable (CUDA
            without a GPU) or conflicts with an ONNX spec; the message names the field at fault.
        specs.SpecError: a dict spec is invalid.

    Example:
        >>> backbone = adapters.build(specs.TimmSpec("vit_tiny_patch16_224", pretrained=False))
        >>> features = backbone(torch.randn(2, 3, 224, 224))   # (2, 192)
        >>> on_gpu = adapters.build("timm/resnet18", device="cuda")
        >>> features = on_gpu(images.cuda(non_blocking=True))
    """
    if runtime not in RUNTIMES:
        raise BuildError(
            "runtime",
            f"unknown runtime {runtime!r}",
            expected=f"one of {', '.join(RUNTIMES)}",
            got=runtime,
        )
    device = normalize_device(device)
    if runtime == "onnxruntime" and device not in (None, "cpu"):
        raise BuildError(
            "device",
            f"runtime='onnxruntime' serves the exported backbone on the CPU, not {device}",
            fix="Use runtime='torch' with this device, or export the backbone "
            "(python -m adapters export) and build specs.OnnxSpec(path=..., device='cuda')",
        )
    spec = as_spec(spec)
    if device is not None:
        if isinstance(spec, specs.OnnxSpec):
            _check_onnx_device(spec, device)
        elif isinstance(spec, _TORCH_SPECS) and device != "cpu":
            from .torch_module import resolve_device

            resolve_device(device)  # no GPU: fail before loading any weights
    builder = _builder(spec)
    places = device is not None and _takes_device(builder)
    adapter = builder(spec, device=device) if places else builder(spec)
    if not isinstance(adapter, Adapter):
        raise BuildError(
            "spec",
            f"the builder for {type(spec).__name__} returned {type(adapter).__name__}, "
            "not an adapters.Adapter",
            fix="Make the builder return adapters.Adapter(forward=..., params=..., spec=...)",
        )
    if device is not None and not places:
        _check_placed(adapter, device, spec)
    if runtime == "onnxruntime":
        from .runtimes.onnxruntime import serve_with_onnxruntime

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
    from .transforms.factories import from_specs

    return from_specs(records)
