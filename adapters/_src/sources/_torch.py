"""What every torch source does after it has a module: checkpoint, then the adapter."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import torch

import specs

from .. import checkpoint, resources
from ..adapter import Adapter
from ..devices import resolve_device
from ..errors import BuildError
from ..imports import import_object
from ..precision import precision_of
from ..preprocess import INTERPOLATIONS, Preprocess
from ..torch_module import Call, torch_adapter
from ..transforms.of_spec import output_transform

#: ``(state, module) -> state``: a source's checkpoint filter (timm's)
FilterFn = Callable[[dict[str, torch.Tensor], torch.nn.Module], Mapping[str, Any]]


def check_device(spec: Any, device: str) -> None:
    """Fail before any weights load when ``device`` asks for a GPU that torch does not see."""
    if device != "cpu":
        resolve_device(device)


def require_module(obj: Any, field: str, what: str) -> torch.nn.Module:
    """``obj`` if it is an ``nn.Module``, else a `BuildError` naming ``field``."""
    if not isinstance(obj, torch.nn.Module):
        raise BuildError(
            field,
            f"{what} returned {type(obj).__name__}, not a torch.nn.Module",
            fix="Point it at a class or function that returns an nn.Module",
        )
    return obj


def load_checkpoint(
    module: torch.nn.Module,
    spec: Any,
    *,
    filter_fn: FilterFn | None = None,
) -> None:
    """Load ``spec.checkpoint_path`` (if set) into ``module``, verified and strict.

    The path may be a ``pkg://package/file`` resource of an installed package. The keys go
    through ``checkpoint_prefix`` (stripped), ``checkpoint_converter`` (the spec's foreign
    layout converter), then ``filter_fn``, and are checked against the module's own names.

    Args:
        filter_fn: optional ``(state, module) -> state`` (timm's checkpoint filters).

    Raises:
        BuildError: unreadable checkpoint, failing converter, or keys / shapes that do not fit.
    """
    path = getattr(spec, "checkpoint_path", None)
    if not path:
        return
    path = resources.resolve(path)
    state = checkpoint.read_state_dict(path, **read_args(spec))
    state = transform(state, spec, path, module, filter_fn)
    checkpoint.load_into(module, state, strict=getattr(spec, "strict", True), path=path)


def read_args(spec: Any) -> dict[str, Any]:
    return {
        "sha256": getattr(spec, "checkpoint_sha256", None),
        "prefix": getattr(spec, "checkpoint_prefix", None),
    }


def transform(
    state: dict[str, torch.Tensor],
    spec: Any,
    path: str,
    module: torch.nn.Module,
    filter_fn: FilterFn | None,
) -> dict[str, torch.Tensor]:
    """``state`` through the spec's ``checkpoint_converter``, then ``filter_fn``."""
    converter = getattr(spec, "checkpoint_converter", None)
    if converter:
        state = convert(state, converter, path)
    if filter_fn is not None:
        try:
            state = dict(filter_fn(state, module))
        except Exception as err:
            raise BuildError(
                "checkpoint_path", f"checkpoint {path!r} does not fit the model: {err}"
            ) from err
    return state


def convert(state: dict[str, torch.Tensor], converter: str, path: str) -> dict[str, torch.Tensor]:
    """``state`` through the function at import path ``converter`` (``state_dict -> state_dict``).

    Raises:
        BuildError: the converter cannot be imported, raises, or returns no tensor mapping.
    """
    fn = import_object(converter, "checkpoint_converter")
    if not callable(fn):
        raise BuildError(
            "checkpoint_converter",
            f"{converter!r} is not callable",
            expected="the import path of a function state_dict -> state_dict",
            got=fn,
        )
    try:
        out = fn(state)
    except Exception as err:  # user code: say which converter failed on which file
        raise BuildError(
            "checkpoint_converter", f"{converter} failed on checkpoint {path!r}: {err}"
        ) from err
    bad = (
        next((k for k, v in out.items() if not isinstance(v, torch.Tensor)), None)
        if isinstance(out, Mapping)
        else None
    )
    if not isinstance(out, Mapping) or bad is not None:
        what = type(out).__name__ if bad is None else f"a non-tensor under key {bad!r}"
        raise BuildError(
            "checkpoint_converter",
            f"{converter} returned {what}, not a state dict",
            expected="a mapping of parameter names to tensors",
            fix="Return the converted state dict from the converter",
        )
    return dict(out)


def finish(
    module: torch.nn.Module,
    spec: Any,
    *,
    call: Call | None = None,
    info: Mapping[str, Any] | None = None,
    device: str | None = None,
) -> Adapter:
    """The adapter of a loaded module, with the spec's output transforms, moved to ``device``
    (None: where it is), at the spec's ``precision``."""
    info = dict(info or {})
    if info.get("preprocess") is None:
        info["preprocess"] = timm_preprocess(module)
    return torch_adapter(
        module,
        spec,
        call=call,
        post=output_transform(spec),
        info=info,
        device=device,
        precision=precision_of(spec),
    )


def out_indices_call(
    module: torch.nn.Module,
    out_indices: int | Sequence[int] | None,
    *,
    method: str,
    what: str,
    returns: str,
    fix: str,
    run: Callable[[torch.nn.Module, Any, Any], Any],
) -> Call | None:
    """The ``call`` returning intermediate outputs for ``out_indices`` (timm, torch.hub).

    Args:
        module: the loaded model.
        out_indices: the spec's field: None (the model's own forward), an int or indices.
        method: the model method that computes them (checked to exist).
        what, returns, fix: the error's wording (``"timm model 'x'"``, ``"feature maps"``).
        run: ``run(module, x, indices) -> outputs``.

    Raises:
        BuildError: ``out_indices`` is set and the model has no ``method``.
    """
    if out_indices is None:
        return None
    if not hasattr(module, method):
        raise BuildError(
            "out_indices",
            f"{what} ({type(module).__name__}) has no {method}, so it cannot return {returns}",
            fix=fix,
        )
    indices = out_indices if isinstance(out_indices, int) else list(out_indices)

    def call(m: torch.nn.Module, x: Any) -> Any:
        return run(m, x, indices)

    return call


def input_shape_of(module: torch.nn.Module) -> tuple[int, ...] | None:
    """``(1, C, H, W)`` the module takes, from timm's or HuggingFace's config, if known.

    For a timm model the pretrained config gives the default, and the model as built wins:
    a ViT created with ``img_size=`` reports that size (the one its position embedding and
    `timm_preprocess` use), and a model created with ``in_chans=`` reports the channels of
    its first convolution (``pretrained_cfg["first_conv"]``). The JAX and ONNX Runtime
    runtimes trace zeros of this shape when no example input is given.
    """
    cfg = getattr(module, "pretrained_cfg", None)
    if isinstance(cfg, Mapping) and cfg.get("input_size"):
        channels, h, w = (int(v) for v in cfg["input_size"])
        h, w = built_img_size(module) or (h, w)
        return (1, first_conv_channels(module, cfg) or channels, h, w)
    config = getattr(module, "config", None)
    size = getattr(config, "image_size", None)
    channels = getattr(config, "num_channels", 3)
    if isinstance(size, int):
        return (1, channels, size, size)
    return None


def built_img_size(module: torch.nn.Module) -> tuple[int, int] | None:
    """``(H, W)`` a timm ViT-style model was built for (``patch_embed.img_size``), when its
    patch embedding insists on it (``strict_img_size``); None otherwise (a CNN, or a
    ``dynamic_img_size`` model, which takes its data config's size)."""
    patch = getattr(module, "patch_embed", None)
    img_size = getattr(patch, "img_size", None)
    if img_size is None or not getattr(patch, "strict_img_size", True):
        return None
    h, w = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    return int(h), int(w)


def first_conv_channels(module: torch.nn.Module, cfg: Mapping[str, Any]) -> int | None:
    """Input channels of the convolution timm names in ``cfg["first_conv"]``, if it has one."""
    name = cfg.get("first_conv")
    if not isinstance(name, str):
        return None
    try:
        conv = module.get_submodule(name)
    except AttributeError:  # a config naming a layer this variant does not have
        return None
    channels = getattr(conv, "in_channels", None)
    return int(channels) if isinstance(channels, int) else None


def timm_preprocess(module: torch.nn.Module) -> Preprocess | None:
    """timm's data config of a module with a ``pretrained_cfg`` (the input size from its patch
    embedding when it was built with another ``img_size``); None for other modules."""
    if not hasattr(module, "pretrained_cfg"):
        return None
    import timm.data

    cfg = timm.data.resolve_model_data_config(module)
    channels, h, w = cfg["input_size"]
    # A model built with img_size=... or in_chans=... keeps its pretrained config's size and
    # channels; trust the model.
    h, w = built_img_size(module) or (h, w)
    mean, std = tuple(float(m) for m in cfg["mean"]), tuple(float(s) for s in cfg["std"])
    built = first_conv_channels(module, module.pretrained_cfg)
    if built is not None and built != channels:
        if built != 1:  # no honest per-channel statistics to give
            return None
        # grayscale: timm folds a 3-channel stem into one by summing its kernels, which
        # reads the grey image as all three channels; their statistics averaged
        channels, mean, std = 1, (sum(mean) / len(mean),), (sum(std) / len(std),)
    interp = cfg.get("interpolation", "bicubic")
    return Preprocess(
        size=(int(h), int(w)),
        channels=int(channels),
        mean=mean,
        std=std,
        interpolation=interp if interp in INTERPOLATIONS else "bicubic",
        crop_pct=float(cfg.get("crop_pct", 1.0)),
        crop_mode=str(cfg.get("crop_mode") or "center"),
        origin="timm data config",
        pipeline="timm",
    )


def out_indices_override(spec: Any, value: Any) -> Any:
    """Registry ``out_indices`` for timm and torch.hub: feature maps instead of the CLS token
    (the spec's field, or the hub entrypoint's own argument when the entry passes one)."""
    transforms = spec.transforms
    if value is not None:
        drop = (specs.ClsToken, specs.MeanPatch)
        transforms = tuple(t for t in spec.transforms if not isinstance(t, drop))
    if "out_indices" in spec.model_kwargs:  # passed to the hub entrypoint itself
        kwargs = {**spec.model_kwargs, "out_indices": value}
        return attrs.evolve(spec, model_kwargs=kwargs, transforms=transforms)
    return attrs.evolve(spec, out_indices=value, transforms=transforms)
