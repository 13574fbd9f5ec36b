"""Immutable spec records: one per backbone source and one per output transform.

Records are plain data (no torch, no jax). They are frozen, hashable and comparable, are
validated at construction, and change only through ``attrs.evolve`` (which validates again).
Field names and defaults follow kaiko-ai/eva's model wrappers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from .errors import SpecError
from .frozen import FrozenDict, freeze

# ---------------------------------------------------------------------------------------------
# validators: small callables raising SpecError(field, expected, got)
# ---------------------------------------------------------------------------------------------

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def _check(expected: str, ok: Callable[[Any], bool], **extra: Any) -> Validator:
    def validate(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not ok(value):
            raise SpecError(attribute.name, expected, value, **extra)

    return validate


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_str = _check("a non-empty string", lambda v: isinstance(v, str) and v.strip() != "")
_opt_str = _check(
    "a non-empty string or null", lambda v: v is None or (isinstance(v, str) and v.strip() != "")
)
_bool = _check("a boolean (true or false)", lambda v: isinstance(v, bool))
_int = _check("an integer", _is_int)
_nonneg_int = _check("an integer >= 0", lambda v: _is_int(v) and v >= 0)
_opt_pos_int = _check("an integer >= 1 or null", lambda v: v is None or (_is_int(v) and v >= 1))
_mapping = _check("a mapping of argument names to values", lambda v: isinstance(v, Mapping))
_dotted = _check(
    "an import path such as 'package.module.name'",
    lambda v: (
        isinstance(v, str) and re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+", v) is not None
    ),
)
_opt_dotted = _check(
    "an import path such as 'package.module.name', or null",
    lambda v: (
        v is None
        or (
            isinstance(v, str) and re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+", v) is not None
        )
    ),
)
_sha256 = _check(
    "a sha256 hex digest (64 hex characters) or null",
    lambda v: v is None or (isinstance(v, str) and re.fullmatch(r"[0-9a-fA-F]{64}", v) is not None),
)


def _one_of(*choices: Any) -> Validator:
    names = tuple(str(c) for c in choices)
    return _check(f"one of {', '.join(names)}", lambda v: v in choices, choices=names)


def _out_indices(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    _check_out_indices(attribute.name, value)


def _check_out_indices(path: str, value: Any) -> None:
    if value is None:
        return
    if _is_int(value):
        if value < 1:
            raise SpecError(
                path, "an integer >= 1 (the last n blocks) or a list of block indices", value
            )
        return
    if isinstance(value, tuple) and value and all(_is_int(v) for v in value):
        return
    raise SpecError(
        path,
        "null, an integer n >= 1 (the last n blocks) or a non-empty list of integer block indices",
        value,
    )


def _registry_kwargs(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    # registry entries take out_indices as eva's do (feature maps instead of an embedding)
    if isinstance(value, Mapping) and "out_indices" in value:
        _check_out_indices(f"{attribute.name}.out_indices", value["out_indices"])


def _providers(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not (isinstance(value, tuple) and value and all(isinstance(p, str) and p for p in value)):
        raise SpecError(
            attribute.name,
            "null or a non-empty list of ONNX Runtime provider names such as 'CPUExecutionProvider'",
            value,
        )


def _shape(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not (isinstance(value, tuple) and value and all(_is_int(v) and v >= 1 for v in value)):
        raise SpecError(attribute.name, "a non-empty list of positive integers (a shape)", value)


def _transforms(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    for i, item in enumerate(value):
        if not isinstance(item, TRANSFORM_TYPES):
            raise SpecError(
                f"{attribute.name}[{i}]",
                "a transform record (ClsToken, PatchGrid, MeanPatch, HiddenState, Select, "
                "AsDiscrete, L2Normalize)",
                item,
            )


# converters


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _as_indices(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _as_frozen(value: Any) -> Any:
    if value is None:
        return FrozenDict()
    return freeze(value) if isinstance(value, Mapping) else value


def _kwargs_field() -> Any:
    return attrs.field(factory=FrozenDict, converter=_as_frozen, validator=_mapping)


def _transforms_field() -> Any:
    return attrs.field(default=(), converter=_as_tuple, validator=_transforms, kw_only=True)


# ---------------------------------------------------------------------------------------------
# transform records
# ---------------------------------------------------------------------------------------------


@attrs.frozen
class ClsToken:
    """(B, T, D) -> (B, D): the CLS token; with ``include_patch_mean``, (B, 2D) with the
    mean of the patch tokens (CLS and register tokens skipped) concatenated.
    Mirrors eva's ``ExtractCLSFeatures(cls_index, num_register_tokens, include_patch_tokens)``."""

    index: int = attrs.field(default=0, validator=_int)
    num_register_tokens: int = attrs.field(default=0, validator=_nonneg_int)
    include_patch_mean: bool = attrs.field(default=False, validator=_bool)


@attrs.frozen
class PatchGrid:
    """(B, T, D) -> [(B, D, h, w)]: patch tokens as a square grid.
    Mirrors eva's ``ExtractPatchFeatures(has_cls_token, num_reg_tokens, ignore_remaining_dims)``."""

    has_cls_token: bool = attrs.field(default=True, validator=_bool)
    num_register_tokens: int = attrs.field(default=0, validator=_nonneg_int)
    ignore_remaining: bool = attrs.field(default=False, validator=_bool)


@attrs.frozen
class MeanPatch:
    """(B, T, D) -> (B, D): mean of the patch tokens (CLS and register tokens skipped)."""

    has_cls_token: bool = attrs.field(default=True, validator=_bool)
    num_register_tokens: int = attrs.field(default=0, validator=_nonneg_int)


@attrs.frozen
class HiddenState:
    """Pick a field of a model output object (``last_hidden_state``) or an element by index."""

    name: str | int = attrs.field(
        default="last_hidden_state",
        validator=_check(
            "a field name (string) or an index (integer)",
            lambda v: (isinstance(v, str) and v != "") or _is_int(v),
        ),
    )


@attrs.frozen
class Select:
    """Pick feature maps by index from a list of them (e.g. the output of ``out_indices``)."""

    indices: tuple[int, ...] = attrs.field(
        converter=_as_indices,
        validator=_check(
            "a non-empty list of integers",
            lambda v: isinstance(v, tuple) and len(v) > 0 and all(_is_int(i) for i in v),
        ),
    )


@attrs.frozen
class AsDiscrete:
    """Logits -> discrete labels, as eva's ``AsDiscrete(argmax, to_onehot, threshold)``."""

    argmax: bool = attrs.field(default=False, validator=_bool)
    to_onehot: int | None = attrs.field(default=None, validator=_opt_pos_int)
    threshold: float | None = attrs.field(
        default=None,
        validator=_check(
            "a number or null",
            lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)),
        ),
    )
    dim: int = attrs.field(default=1, validator=_int)
    keepdim: bool = attrs.field(default=True, validator=_bool)


@attrs.frozen
class L2Normalize:
    """Divide by the L2 norm along ``axis``."""

    axis: int = attrs.field(default=-1, validator=_int)


TRANSFORM_TYPES = (ClsToken, PatchGrid, MeanPatch, HiddenState, Select, AsDiscrete, L2Normalize)
Transform = ClsToken | PatchGrid | MeanPatch | HiddenState | Select | AsDiscrete | L2Normalize

#: tag written in our YAML format (``transform: cls_token``) -> record type
TRANSFORMS: dict[str, type] = {
    "cls_token": ClsToken,
    "patch_grid": PatchGrid,
    "mean_patch": MeanPatch,
    "hidden_state": HiddenState,
    "select": Select,
    "as_discrete": AsDiscrete,
    "l2_normalize": L2Normalize,
}

# ---------------------------------------------------------------------------------------------
# source records
# ---------------------------------------------------------------------------------------------


# Checkpoint options shared by every torch source (keyword-only): the expected sha256 of the
# file (verified before loading), a key prefix to strip (e.g. "module."), strict key matching.


def _sha256_field() -> Any:
    return attrs.field(default=None, validator=_sha256, kw_only=True)


def _prefix_field() -> Any:
    return attrs.field(default=None, validator=_opt_str, kw_only=True)


def _strict_field() -> Any:
    return attrs.field(default=True, validator=_bool, kw_only=True)


@attrs.frozen
class RegistrySpec:
    """A named entry of the adapters registry (eva's ``ModelFromRegistry``).

    ``model_kwargs`` override the entry's own arguments; ``out_indices`` there (last n
    blocks, or block indices) asks for feature maps, as in eva.
    """

    model_name: str = attrs.field(validator=_str)
    model_kwargs: FrozenDict = attrs.field(
        factory=FrozenDict, converter=_as_frozen, validator=[_mapping, _registry_kwargs]
    )
    transforms: tuple[Transform, ...] = _transforms_field()


@attrs.frozen
class ModuleSpec:
    """A ``torch.nn.Module`` class, called with ``init_args`` (an eva ``class_path`` config)."""

    class_path: str = attrs.field(validator=_dotted)
    init_args: FrozenDict = _kwargs_field()  # noqa: RUF009 (attrs field factory)
    checkpoint_path: str | None = attrs.field(default=None, validator=_opt_str)
    transforms: tuple[Transform, ...] = _transforms_field()
    checkpoint_sha256: str | None = _sha256_field()
    checkpoint_prefix: str | None = _prefix_field()
    strict: bool = _strict_field()


@attrs.frozen
class FunctionSpec:
    """A factory returning an ``nn.Module`` (eva's ``ModelFromFunction``), e.g.
    ``timm.create_model`` or ``torch.hub.load``, called with ``arguments``."""

    path: str = attrs.field(validator=_dotted)
    arguments: FrozenDict = _kwargs_field()  # noqa: RUF009 (attrs field factory)
    checkpoint_path: str | None = attrs.field(default=None, validator=_opt_str)
    transforms: tuple[Transform, ...] = _transforms_field()
    checkpoint_sha256: str | None = _sha256_field()
    checkpoint_prefix: str | None = _prefix_field()
    strict: bool = _strict_field()


@attrs.frozen
class TorchHubSpec:
    """``torch.hub.load`` (eva's ``TorchHubModel``); ``source: local`` loads a local hub dir.

    ``out_indices`` returns intermediate layers via ``get_intermediate_layers(reshape=True)``.
    """

    repo_or_dir: str = attrs.field(validator=_str)
    model_name: str = attrs.field(validator=_str)
    source: str = attrs.field(default="github", validator=_one_of("github", "local"))
    pretrained: bool = attrs.field(default=True, validator=_bool)
    checkpoint_path: str | None = attrs.field(default=None, validator=_opt_str)
    out_indices: int | tuple[int, ...] | None = attrs.field(
        default=None, converter=_as_indices, validator=_out_indices
    )
    norm: bool = attrs.field(default=False, validator=_bool)
    trust_repo: bool = attrs.field(default=True, validator=_bool)
    model_kwargs: FrozenDict = _kwargs_field()  # noqa: RUF009 (attrs field factory)
    transforms: tuple[Transform, ...] = _transforms_field()
    checkpoint_sha256: str | None = _sha256_field()
    checkpoint_prefix: str | None = _prefix_field()
    strict: bool = _strict_field()


@attrs.frozen
class TimmSpec:
    """``timm.create_model`` (eva's ``TimmModel``). ``pretrained`` defaults to True as in eva;
    ``out_indices`` (last n blocks, or block indices) returns (B, C, H, W) feature maps."""

    model_name: str = attrs.field(validator=_str)
    pretrained: bool = attrs.field(default=True, validator=_bool)
    checkpoint_path: str | None = attrs.field(default=None, validator=_opt_str)
    out_indices: int | tuple[int, ...] | None = attrs.field(
        default=None, converter=_as_indices, validator=_out_indices
    )
    model_kwargs: FrozenDict = _kwargs_field()  # noqa: RUF009 (attrs field factory)
    transforms: tuple[Transform, ...] = _transforms_field()
    checkpoint_sha256: str | None = _sha256_field()
    checkpoint_prefix: str | None = _prefix_field()
    strict: bool = _strict_field()


@attrs.frozen
class HuggingFaceSpec:
    """``transformers.AutoModel.from_pretrained`` (eva's ``HuggingFaceModel``).

    Remote code runs only when ``trust_remote_code`` is true; safetensors are preferred.
    """

    model_name_or_path: str = attrs.field(validator=_str)
    model_kwargs: FrozenDict = _kwargs_field()  # noqa: RUF009 (attrs field factory)
    trust_remote_code: bool = attrs.field(default=False, validator=_bool)
    transforms: tuple[Transform, ...] = _transforms_field()


@attrs.frozen
class OnnxSpec:
    """An ONNX file served by ONNX Runtime (eva's ``ONNXModel``)."""

    path: str = attrs.field(validator=_str)
    device: str = attrs.field(default="cpu", validator=_one_of("cpu", "cuda"))
    providers: tuple[str, ...] | None = attrs.field(
        default=None, converter=_as_tuple, validator=_providers
    )
    intra_op_num_threads: int | None = attrs.field(default=None, validator=_opt_pos_int)
    graph_optimization_level: str = attrs.field(
        default="all", validator=_one_of("disable", "basic", "extended", "all")
    )
    transforms: tuple[Transform, ...] = _transforms_field()


@attrs.frozen
class CustomSpec:
    """A user's own loader (the functional replacement for subclassing eva's ``BaseModel``).

    ``load`` (import path) is called with ``arguments``. It returns an ``nn.Module``, an
    ``adapters.Adapter``, or (with ``forward`` set to the import path of a pure
    ``forward(params, x)``) the params that forward needs.
    """

    load: str = attrs.field(validator=_dotted)
    forward: str | None = attrs.field(default=None, validator=_opt_dotted)
    arguments: FrozenDict = _kwargs_field()  # noqa: RUF009 (attrs field factory)
    transforms: tuple[Transform, ...] = _transforms_field()


@attrs.frozen
class FlaxSpec:
    """A Flax ``linen`` module (import path) built with ``init_args`` and applied with
    ``module.apply``; params come from ``checkpoint_path`` (msgpack or safetensors) or are
    initialised from ``seed`` on an input of ``input_shape``."""

    module: str = attrs.field(validator=_dotted)
    init_args: FrozenDict = _kwargs_field()  # noqa: RUF009 (attrs field factory)
    checkpoint_path: str | None = attrs.field(default=None, validator=_opt_str)
    seed: int = attrs.field(default=0, validator=_nonneg_int)
    input_shape: tuple[int, ...] = attrs.field(
        default=(1, 3, 224, 224), converter=_as_tuple, validator=_shape
    )
    transforms: tuple[Transform, ...] = _transforms_field()


Spec = (
    RegistrySpec
    | ModuleSpec
    | FunctionSpec
    | TorchHubSpec
    | TimmSpec
    | HuggingFaceSpec
    | OnnxSpec
    | CustomSpec
    | FlaxSpec
)

#: tag written in our YAML format (``source: timm``) -> record type
SOURCES: dict[str, type] = {
    "registry": RegistrySpec,
    "module": ModuleSpec,
    "function": FunctionSpec,
    "torch_hub": TorchHubSpec,
    "timm": TimmSpec,
    "huggingface": HuggingFaceSpec,
    "onnx": OnnxSpec,
    "custom": CustomSpec,
    "flax": FlaxSpec,
}
SPEC_TYPES = tuple(SOURCES.values())
#: fields written under another key in our format: `TorchHubSpec.source` (torch.hub's github
#: or local) is ``hub_source:``, because ``source:`` is the record tag
RENAMED: dict[type, dict[str, str]] = {TorchHubSpec: {"source": "hub_source"}}
#: the sources whose backbone is a torch ``nn.Module``
TORCH_SOURCES = (ModuleSpec, FunctionSpec, TorchHubSpec, TimmSpec, HuggingFaceSpec)


def source_of(spec: Any) -> str:
    """The ``source:`` tag of a spec record."""
    for tag, cls in SOURCES.items():
        if type(spec) is cls:
            return tag
    raise SpecError("source", "a spec record", spec, choices=SOURCES)


def transform_tag(record: Any) -> str:
    """The ``transform:`` tag of a transform record."""
    for tag, cls in TRANSFORMS.items():
        if type(record) is cls:
            return tag
    raise SpecError("transform", "a transform record", record, choices=TRANSFORMS)
