"""`HuggingFaceSpec`: ``transformers.AutoModel.from_pretrained``, as eva's ``HuggingFaceModel``.

Model output objects (``BaseModelOutputWithPooling``) reach the transforms unchanged, so a
`HiddenState` transform picks ``last_hidden_state`` and a `ClsToken` its first token. Remote
code runs only with ``trust_remote_code: true``; transformers prefers safetensors weights.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import torch

import specs

from ..adapter import Adapter
from ..errors import ArgumentError, BuildError
from ..imports import thaw
from ..offline import hub_cached, hub_cached_path, is_offline
from ..precision import precision_of
from ..preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocess, PreprocessError
from ..torch_precision import storage_dtype
from . import _torch
from ._torch import finish, input_shape_of, require_module


def _looks_local(path: str) -> bool:
    return (
        os.path.isabs(path)
        or path.startswith((".", "~"))
        or path.count("/") > 1
        or (os.sep != "/" and os.sep in path)
    )


def build_huggingface(spec: specs.HuggingFaceSpec, *, device: str | None = None) -> Adapter:
    """``AutoModel.from_pretrained(model_name_or_path, **model_kwargs)`` in eval mode, on
    ``device``."""
    path = spec.model_name_or_path
    local = os.path.expanduser(path)
    if os.path.isdir(local):
        path = local
        if not os.path.isfile(os.path.join(local, "config.json")):
            raise BuildError(
                "model_name_or_path",
                f"local directory {spec.model_name_or_path!r} has no config.json",
                fix="Point it at a folder written by model.save_pretrained(...)",
            )
    elif _looks_local(path) or os.path.exists(local):
        raise BuildError(
            "model_name_or_path",
            f"local HuggingFace model directory {spec.model_name_or_path!r} does not exist",
            fix="Check the path (a folder written by save_pretrained), or give a hub repo id "
            "such as 'owkin/phikon'",
        )
    elif is_offline() and not hub_cached(path, "config.json"):
        raise BuildError(
            "model_name_or_path",
            f"hub model {path!r} is not in the local HuggingFace cache and this process is offline "
            "(HF_HUB_OFFLINE=1, or huggingface.co does not resolve)",
            fix="Download it once while online, or point model_name_or_path at a local copy",
        )
    kwargs = thaw(spec.model_kwargs)
    trust = bool(kwargs.pop("trust_remote_code", False)) or spec.trust_remote_code
    if not trust:
        _refuse_custom_code(spec.model_name_or_path, _config_file(path))
    # always explicit: left unset, transformers asks on stdin whether to run the custom code
    kwargs["trust_remote_code"] = trust
    import transformers

    storage = storage_dtype(precision_of(spec))
    loaded: dict[str, Any] = {}
    if storage is not None and not {"dtype", "torch_dtype"} & set(kwargs):
        # the weights are read straight into the storage dtype (no float32 model); a model
        # computing floating buffers in __init__ would compute them in it: loaded again below
        kwargs["dtype"], loaded["low_memory_load"] = storage, True
    try:
        module = transformers.AutoModel.from_pretrained(path, **kwargs)
        transient = _floating_transient_buffers(module) if loaded else []
        if transient:
            del module
            kwargs.pop("dtype")
            loaded["low_memory_load"] = f"not used: non-persistent buffer {transient[0]}"
            module = transformers.AutoModel.from_pretrained(path, **kwargs)
    except TypeError as err:
        raise ArgumentError(
            "model_kwargs", f"from_pretrained rejected its arguments: {err}"
        ) from err
    except (OSError, ValueError) as err:
        if not trust:
            # a hub config is in the cache only now: transformers fetched it, then refused
            _refuse_custom_code(spec.model_name_or_path, _config_file(path))
        raise BuildError(
            "model_name_or_path", f"cannot load {spec.model_name_or_path!r}: {err}"
        ) from err
    module = require_module(module, "model_name_or_path", "AutoModel.from_pretrained")
    info = {"input_shape": input_shape_of(module), "preprocess": hf_preprocess(path), **loaded}
    return finish(module, spec, info=info, device=device)


def _floating_transient_buffers(module: Any) -> list[str]:
    """Names of ``module``'s floating non-persistent buffers (computed, not loaded)."""
    if not isinstance(module, torch.nn.Module):
        return []
    own = module.state_dict()
    return [n for n, b in module.named_buffers() if n not in own and b.is_floating_point()]


def _config_file(path: str) -> str | None:
    """The model's ``config.json`` on this machine (local folder or hub cache), if any."""
    if os.path.isdir(path):
        return os.path.join(path, "config.json")
    return hub_cached_path(path, "config.json")


def _refuse_custom_code(name: str, config_file: str | None) -> None:
    """Raise `BuildError` naming ``trust_remote_code`` when the config maps to custom code.

    Checked before transformers sees the model, so nothing of the repository is imported.
    A config that cannot be read here is left to transformers, which (given an explicit
    ``trust_remote_code=False``) refuses custom code itself.
    """
    if config_file is None:
        return
    try:
        with open(config_file, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError):
        return
    auto_map = config.get("auto_map") if isinstance(config, dict) else None
    if auto_map:
        targets = ", ".join(sorted(str(v) for v in dict(auto_map).values()))
        raise BuildError(
            "trust_remote_code",
            f"{name!r} needs its own Python code to load ({targets}), and "
            "trust_remote_code is false, so none of it was run",
            fix="Read that code; if you trust it, set trust_remote_code: true in the spec",
        )


def hf_preprocess(where: str) -> Preprocess | None:
    """The ``preprocessor_config.json`` next to local weights, as a `Preprocess` (else None)."""
    if not where or not (Path(where) / "preprocessor_config.json").is_file():
        return None
    cfg = json.loads((Path(where) / "preprocessor_config.json").read_text())
    size = cfg.get("crop_size") or cfg.get("size") or 224
    if isinstance(size, Mapping):
        edge = size.get("shortest_edge")
        size = (size["height"], size["width"]) if "height" in size else (edge, edge)
    elif isinstance(size, int):
        size = (size, size)
    resample = {0: "nearest", 2: "bilinear", 3: "bicubic"}.get(cfg.get("resample", 3), "bicubic")
    try:
        return Preprocess(
            size=(int(size[0]), int(size[1])),
            channels=int(cfg.get("num_channels", 3)),
            mean=tuple(cfg.get("image_mean", IMAGENET_MEAN)),
            std=tuple(cfg.get("image_std", IMAGENET_STD)),
            interpolation=resample,
            origin="huggingface preprocessor_config.json",
        )
    except PreprocessError as err:
        raise BuildError(
            "model_name_or_path",
            f"{Path(where) / 'preprocessor_config.json'} holds preprocessing out of range ({err})",
            fix="Correct that file",
        ) from None


# the source's entry points, found by its tag (adapters/_src/sources/table.py)
build = build_huggingface
check_device = _torch.check_device


def _out_indices(spec: specs.HuggingFaceSpec, value: Any) -> specs.HuggingFaceSpec:
    """Registry ``out_indices``: ``1`` swaps `ClsToken` for `PatchGrid` (the last layer's patch
    grid), as eva does; None keeps the entry."""
    if value is None:
        return spec
    if value != 1:
        raise ValueError(
            "(HuggingFace) supports out_indices 1 (the patch grid of the last layer) or null "
            "only, as in eva"
        )
    transforms = tuple(
        specs.PatchGrid(num_register_tokens=t.num_register_tokens)
        if isinstance(t, specs.ClsToken)
        else t
        for t in spec.transforms
    )
    return attrs.evolve(spec, transforms=transforms)


REGISTRY_OVERRIDES = {"out_indices": _out_indices}
