"""`TimmSpec`: ``timm.create_model``, as eva's ``TimmModel``.

``out_indices`` returns the list of ``(B, C, H, W)`` maps of ``forward_intermediates``: what
timm's ``features_only=True`` wrapper runs for ViTs, but on the full model, so ``params``
keep the names of the architecture's own state dict and checkpoints load unchanged.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Mapping
from typing import Any

import torch

import specs

from ..adapter import Adapter
from ..errors import BuildError
from ..imports import call_with, import_object, thaw
from ..offline import hub_cached, is_offline
from . import _torch
from ._torch import finish, input_shape_of, out_indices_call
from ._torch_low import construct_and_load

_HUB_PREFIXES = ("hf-hub:", "hf_hub:")
#: timm arguments that take a class; an import path string there is imported first
_CLASS_ARGS = ("mlp_layer", "act_layer", "norm_layer", "block_fn", "embed_layer", "block_layer")


def _check_name(name: str) -> None:
    import timm

    if name.startswith(_HUB_PREFIXES) or timm.is_model(name):
        return
    close = difflib.get_close_matches(name.split(".")[0], timm.list_models(), n=5, cutoff=0.6)
    raise BuildError(
        "model_name",
        f"timm has no model {name!r}",
        fix=(f"Closest: {', '.join(close)}. " if close else "")
        + "See timm.list_models('pattern*')",
    )


def _weights_cached(name: str) -> bool:
    """Whether pretrained weights for ``name`` can load without a download."""
    from timm.models import get_pretrained_cfg

    if name.startswith(_HUB_PREFIXES):
        repo = name.split(":", 1)[1]
        return hub_cached(repo, "config.json")
    cfg = get_pretrained_cfg(name)
    if cfg is None:
        return False
    if cfg.hf_hub_id and any(
        hub_cached(cfg.hf_hub_id, f) for f in ("model.safetensors", "pytorch_model.bin")
    ):
        return True
    if cfg.url:
        cached = os.path.join(torch.hub.get_dir(), "checkpoints", cfg.url.split("/")[-1])
        return os.path.exists(cached)
    return False


def resolve_classes(kwargs: Mapping[str, Any], field: str = "model_kwargs") -> dict[str, Any]:
    """Import the dotted-path values of class-typed timm arguments (``mlp_layer``, ...)."""
    out = thaw(kwargs)
    for key in _CLASS_ARGS:
        value = out.get(key)
        if isinstance(value, str) and "." in value:
            out[key] = import_object(value, f"{field}.{key}")
    return out


def _checkpoint_filter(module: torch.nn.Module) -> Any:
    """timm's ``checkpoint_filter_fn`` of the model's module (if any), then the head dropped
    for a headless model (``num_classes=0``), as timm's own pretrained loading does."""
    timm_filter = getattr(sys.modules.get(type(module).__module__), "checkpoint_filter_fn", None)
    head = (getattr(module, "pretrained_cfg", None) or {}).get("classifier")
    headless = getattr(module, "num_classes", None) == 0 and isinstance(head, str)

    def filter_fn(state: dict[str, torch.Tensor], m: torch.nn.Module) -> Mapping[str, Any]:
        if timm_filter is not None:
            state = dict(timm_filter(state, m))
        if headless:
            own = m.state_dict()
            state = {k: v for k, v in state.items() if k in own or not k.startswith(f"{head}.")}
        return state

    return filter_fn


def build_timm(spec: specs.TimmSpec, *, device: str | None = None) -> Adapter:
    """``timm.create_model(model_name, pretrained, **model_kwargs)`` (+ checkpoint), moved to
    ``device``."""
    import timm

    _check_name(spec.model_name)
    pretrained = spec.pretrained and not spec.checkpoint_path
    if pretrained and is_offline() and not _weights_cached(spec.model_name):
        raise BuildError(
            "pretrained",
            f"pretrained weights for {spec.model_name!r} are not in the local cache and "
            "this process is offline (HF_HUB_OFFLINE=1, or huggingface.co does not resolve)",
            fix="Set pretrained: false for random weights, give a local checkpoint_path, or "
            "download the weights once while online",
        )
    kwargs = resolve_classes(spec.model_kwargs)
    for reserved in ("pretrained", "features_only", "out_indices", "checkpoint_path"):
        if reserved in kwargs:
            raise BuildError(
                f"model_kwargs.{reserved}",
                f"{reserved!r} is a field of the timm spec, not a model argument",
                fix=f"Set {reserved} on the spec itself",
            )
    kwargs = {"model_name": spec.model_name, "pretrained": pretrained, **kwargs}

    def make() -> torch.nn.Module:
        try:
            return call_with(timm.create_model, kwargs, "model_kwargs", "timm.create_model")
        except BuildError:
            raise
        except Exception as err:
            field = "pretrained" if pretrained else "model_kwargs"
            raise BuildError(
                field, f"timm.create_model({spec.model_name!r}) failed: {err}"
            ) from err

    module, loaded = construct_and_load(make, spec, filter_of=_checkpoint_filter)

    call = out_indices_call(
        module,
        spec.out_indices,
        method="forward_intermediates",
        what=f"timm model {spec.model_name!r}",
        returns="feature maps",
        fix="Remove out_indices, or pick a model with forward_intermediates (ViTs, "
        "ResNets, ConvNeXts, ...)",
        run=lambda m, x, indices: m.forward_intermediates(
            x, indices=indices, intermediates_only=True
        ),
    )
    return finish(
        module,
        spec,
        call=call,
        info={
            "input_shape": input_shape_of(module),
            "output": "feature_maps" if call else "model",
            **loaded,
        },
        device=device,
    )


# the source's entry points, found by its tag (adapters/_src/sources/table.py)
build = build_timm
check_device = _torch.check_device
REGISTRY_OVERRIDES = {"out_indices": _torch.out_indices_override}
