"""eva configs (``class_path`` + ``init_args``) -> our field names, before structuring.

Each of kaiko-ai/eva's model wrappers and output transforms maps to one record; its
``__init__`` argument names map to our field names here, so that an eva config and the
equivalent config in our own format load to equal records. Any other ``class_path`` is a
plain ``nn.Module`` class, a `ModuleSpec`, as eva's docs say: a class of another package, or one
of eva's own networks (``eva.vision.models.networks.backbones.radiology.SwinUNETREncoder``).
Only a near miss of a wrapper (a class in a wrapper module, or a name close to a wrapper's) is
rejected, with the closest wrapper named.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, NamedTuple

from .errors import Location, SpecError
from .records import (
    AsDiscrete,
    ClsToken,
    FunctionSpec,
    HuggingFaceSpec,
    ModuleSpec,
    OnnxSpec,
    PatchGrid,
    RegistrySpec,
    TimmSpec,
    TorchHubSpec,
)


class Translated(NamedTuple):
    """An eva config rewritten with our field names.

    ``keymap`` sends each of our field names to where its value sits in the eva config,
    relative to ``base``, so that errors name the key the user wrote.
    """

    record: type
    data: dict[str, Any]
    base: Location
    keymap: dict[str, Location]
    owner: str


_TRANSFORMS_ARGS = {"tensor_transforms": "transforms", "transforms": "transforms"}

# eva wrapper name -> (record, {eva argument: our field})
_WRAPPER_ARGS: dict[str, tuple[type, dict[str, str]]] = {
    "ModelFromRegistry": (
        RegistrySpec,
        {"model_name": "model_name", "model_kwargs": "model_kwargs", "model_extra_kwargs": ""},
    ),
    "TimmModel": (
        TimmSpec,
        {
            "model_name": "model_name",
            "pretrained": "pretrained",
            "checkpoint_path": "checkpoint_path",
            "out_indices": "out_indices",
            "model_kwargs": "model_kwargs",
            "concat_mean_patch_tokens": "",
        },
    ),
    "ModelFromFunction": (
        FunctionSpec,
        {"path": "path", "arguments": "arguments", "checkpoint_path": "checkpoint_path"},
    ),
    "HuggingFaceModel": (
        HuggingFaceSpec,
        {"model_name_or_path": "model_name_or_path", "model_kwargs": "model_kwargs"},
    ),
    "ONNXModel": (OnnxSpec, {"path": "path", "device": "device"}),
    "TorchHubModel": (
        TorchHubSpec,
        {
            "model_name": "model_name",
            "repo_or_dir": "repo_or_dir",
            "pretrained": "pretrained",
            "checkpoint_path": "checkpoint_path",
            "out_indices": "out_indices",
            "norm": "norm",
            "trust_repo": "trust_repo",
            "forward_features": "",
            "model_kwargs": "model_kwargs",
        },
    ),
}

_CORE = (
    "eva.models.wrappers",
    "eva.core.models.wrappers",
    "eva.models.networks.wrappers",
    "eva.core.models.networks.wrappers",
    "eva.models",
    "eva.core.models",
)
_VISION = ("eva.vision.models.wrappers", "eva.vision.models.networks.wrappers", "eva.vision.models")

#: the spelling eva's documentation uses for each wrapper
_PRIMARY = {
    "ModelFromRegistry": "eva.vision.models.wrappers.ModelFromRegistry",
    "TimmModel": "eva.vision.models.wrappers.TimmModel",
    "ModelFromFunction": "eva.models.wrappers.ModelFromFunction",
    "HuggingFaceModel": "eva.models.wrappers.HuggingFaceModel",
    "ONNXModel": "eva.models.wrappers.ONNXModel",
    "TorchHubModel": "eva.models.wrappers.TorchHubModel",
}

#: every accepted eva wrapper class path -> the record it loads to
EVA_WRAPPERS: dict[str, type] = {
    f"{module}.{name}": _WRAPPER_ARGS[name][0]
    for name in _WRAPPER_ARGS
    for module in (_VISION if name in ("ModelFromRegistry", "TimmModel") else _CORE)
}
EVA_WRAPPERS["eva.core.models.networks.wrappers.TimmModel"] = TimmSpec
EVA_WRAPPERS["eva.models.networks.wrappers.TimmModel"] = TimmSpec

# eva transform name -> (record, {eva argument: our field})
_TRANSFORM_ARGS: dict[str, tuple[type, dict[str, str]]] = {
    "ExtractCLSFeatures": (
        ClsToken,
        {
            "cls_index": "index",
            "num_register_tokens": "num_register_tokens",
            "include_patch_tokens": "include_patch_mean",
        },
    ),
    "ExtractPatchFeatures": (
        PatchGrid,
        {
            "has_cls_token": "has_cls_token",
            "num_register_tokens": "num_register_tokens",
            "num_reg_tokens": "num_register_tokens",
            "ignore_remaining_dims": "ignore_remaining",
        },
    ),
    "AsDiscrete": (
        AsDiscrete,
        {
            "argmax": "argmax",
            "to_onehot": "to_onehot",
            "threshold": "threshold",
            "dim": "dim",
            "keepdim": "keepdim",
        },
    ),
}
_TRANSFORM_MODULES = (
    "eva.models.networks.transforms",
    "eva.core.models.networks.transforms",
    "eva.models.transforms",
    "eva.core.models.transforms",
)

#: every accepted eva output-transform class path -> the record it loads to
EVA_TRANSFORMS: dict[str, type] = {
    f"{module}.{name}": record
    for name, (record, _) in _TRANSFORM_ARGS.items()
    for module in _TRANSFORM_MODULES
}


def translate_model(config: Mapping[str, Any], location: Location) -> Translated:
    """An eva backbone config (a mapping with ``class_path``) in our field names.

    Raises:
        SpecError: an unknown eva class path or argument, or a malformed config.
    """
    class_path, init_args = _split(config, location, "an eva model wrapper or nn.Module")
    if class_path not in EVA_WRAPPERS and not _near_wrapper(class_path):
        return Translated(
            ModuleSpec,
            {"class_path": class_path, "init_args": init_args},
            location,
            {},
            f"class_path {class_path}",
        )
    if class_path not in EVA_WRAPPERS:
        hint = None
        if class_path.rsplit(".", 1)[-1] == "BaseModel":
            hint = (
                "BaseModel is abstract: write a loader function and use "
                "'source: custom' with 'load: your.module.loader'."
            )
        raise SpecError(
            (*location, "class_path"),
            "an eva model wrapper class path (or an nn.Module class, such as one of eva's "
            "networks)",
            class_path,
            choices=sorted(_PRIMARY.values()),
            hint=hint,
        )
    name = class_path.rsplit(".", 1)[-1]
    record, names = _WRAPPER_ARGS[name]
    base = (*location, "init_args")
    data, keymap = _rename(init_args, {**names, **_TRANSFORMS_ARGS}, base, name)
    _special_cases(name, init_args, data, keymap, base)
    return Translated(record, data, base, keymap, f"eva {name}")


def _near_wrapper(class_path: str) -> bool:
    """An eva path meant as a wrapper: in a wrapper or transform module, or named like one."""
    if not class_path.startswith("eva."):
        return False
    module, _, name = class_path.rpartition(".")
    if module in (*_CORE, *_VISION, *_TRANSFORM_MODULES) or name == "BaseModel":
        return True
    return bool(difflib.get_close_matches(name, list(_WRAPPER_ARGS), n=1, cutoff=0.8))


def translate_transform(config: Mapping[str, Any], location: Location) -> Translated:
    """An eva output-transform config (``class_path`` + ``init_args``) in our field names."""
    class_path, init_args = _split(config, location, "an eva output transform")
    if class_path not in EVA_TRANSFORMS:
        raise SpecError(
            (*location, "class_path"),
            "an eva output transform class path",
            class_path,
            choices=sorted(f"eva.models.networks.transforms.{n}" for n in _TRANSFORM_ARGS),
            hint="Other callables cannot be described as data: use one of our transform "
            "names instead (transform: cls_token, patch_grid, mean_patch, ...).",
        )
    name = class_path.rsplit(".", 1)[-1]
    record, names = _TRANSFORM_ARGS[name]
    base = (*location, "init_args")
    data, keymap = _rename(init_args, names, base, name)
    return Translated(record, data, base, keymap, f"eva {name}")


def _split(config: Mapping[str, Any], location: Location, what: str) -> tuple[str, dict[str, Any]]:
    for key in config:
        if key not in ("class_path", "init_args"):
            raise SpecError(
                (*location, key),
                f"only 'class_path' and 'init_args' in {what} config",
                key,
                choices=("class_path", "init_args"),
                hint="Put constructor arguments under 'init_args'.",
            )
    class_path = config["class_path"]
    if not isinstance(class_path, str) or not class_path.strip():
        raise SpecError(
            (*location, "class_path"), "an import path such as 'package.module.Class'", class_path
        )
    init_args = config.get("init_args")
    if init_args is None:
        init_args = {}
    if not isinstance(init_args, Mapping):
        raise SpecError(
            (*location, "init_args"), "a mapping of argument names to values", init_args
        )
    return class_path.strip(), dict(init_args)


#: eva (Lightning) sets the precision on its trainer, not on a model wrapper
_TRAINER_PRECISION = (
    "eva sets the precision on its trainer: write 'trainer: {class_path: eva.Trainer, "
    "init_args: {precision: ...}}' beside 'backbone:'."
)


def _rename(
    init_args: Mapping[str, Any], names: Mapping[str, str], base: Location, owner: str
) -> tuple[dict[str, Any], dict[str, Location]]:
    data: dict[str, Any] = {}
    keymap: dict[str, Location] = {}
    for key, value in init_args.items():
        field = names.get(key) if isinstance(key, str) else None
        if field is None:
            raise SpecError(
                (*base, key),
                f"an argument of eva's {owner}",
                key,
                choices=sorted(names),
                hint=_TRAINER_PRECISION if key == "precision" else "Remove or rename it.",
            )
        if not field:
            continue  # handled in _special_cases
        if field in data:
            raise SpecError(
                (*base, key),
                f"one spelling only: {keymap[field][-1]!r} and {key!r} both set {field}",
                key,
                show_got=False,
                hint=f"Keep one of {keymap[field][-1]!r} and {key!r}.",
            )
        data[field] = value
        keymap[field] = (key,)
    return data, keymap


#: eva flags that swap the model's forward for another code path -> how to say it as data
_FORWARD_FLAGS = {
    "concat_mean_patch_tokens": (
        "eva then concatenates the CLS token of forward_features with the mean of the patch "
        "tokens. For the same features, remove it, return the tokens (model_kwargs: "
        "{num_classes: 0, global_pool: ''}) and add the transform ExtractCLSFeatures with "
        "include_patch_tokens: true (and num_register_tokens for models with registers)."
    ),
    "forward_features": (
        "eva then calls model.forward_features instead of the model. Remove it, and pick the "
        "features from the forward output with 'transforms', or use out_indices for "
        "feature maps."
    ),
}


def _special_cases(
    name: str,
    init_args: Mapping[str, Any],
    data: dict[str, Any],
    keymap: dict[str, Location],
    base: Location,
) -> None:
    """eva arguments that do not map one to one onto a field."""
    if data.get("checkpoint_path") == "":
        data["checkpoint_path"] = None  # eva's "no checkpoint" default for timm / torch.hub
    if name == "ONNXModel" and "device" in data and data["device"] is None:
        data["device"] = "cpu"
    if name == "ModelFromRegistry" and init_args.get("model_extra_kwargs") is not None:
        extra = init_args["model_extra_kwargs"]
        kwargs = data.get("model_kwargs") or {}
        if not isinstance(extra, Mapping):
            raise SpecError(
                (*base, "model_extra_kwargs"), "a mapping of argument names to values", extra
            )
        if isinstance(kwargs, Mapping):
            # eva calls the registry entry with model_kwargs | model_extra_kwargs
            data["model_kwargs"] = {**kwargs, **extra}
    for flag, hint in _FORWARD_FLAGS.items():
        if init_args.get(flag) not in (None, False):
            raise SpecError(
                (*base, flag),
                "false or nothing (the adapter always runs the model's forward, and the "
                "output is described by 'transforms')",
                init_args[flag],
                hint=hint,
            )
    # eva passes model_kwargs straight to torch.hub.load / AutoModel.from_pretrained, so these
    # keys there are the fields we keep separately
    lifted = {"TorchHubModel": "source", "HuggingFaceModel": "trust_remote_code"}.get(name)
    kwargs = data.get("model_kwargs")
    if lifted and isinstance(kwargs, Mapping) and lifted in kwargs:
        data["model_kwargs"] = {k: v for k, v in kwargs.items() if k != lifted}
        data[lifted] = kwargs[lifted]
        keymap[lifted] = ("model_kwargs", lifted)
