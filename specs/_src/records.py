"""Immutable spec records: one per backbone source (the transform records they hold live in
``transform_records``, re-exported here).

Records are plain data (no torch, no jax). They are frozen, hashable and comparable, are
validated at construction, and change only through ``attrs.evolve`` (which validates again).
Field names and defaults follow kaiko-ai/eva's model wrappers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from . import validators as v
from .errors import SpecError
from .frozen import FrozenDict, freeze
from .transform_records import TRANSFORM_TYPES as TRANSFORM_TYPES
from .transform_records import TRANSFORMS as TRANSFORMS
from .transform_records import AsDiscrete as AsDiscrete
from .transform_records import ClsToken as ClsToken
from .transform_records import HiddenState as HiddenState
from .transform_records import L2Normalize as L2Normalize
from .transform_records import MeanPatch as MeanPatch
from .transform_records import PatchGrid as PatchGrid
from .transform_records import Select as Select
from .transform_records import Transform as Transform

# ---------------------------------------------------------------------------------------------
# fields shared by several records (validators live in `validators`)
# ---------------------------------------------------------------------------------------------


def _transforms(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    for i, item in enumerate(value):
        if not isinstance(item, TRANSFORM_TYPES):
            names = ", ".join(cls.__name__ for cls in TRANSFORM_TYPES)
            raise SpecError(f"{attribute.name}[{i}]", f"a transform record ({names})", item)


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _as_frozen(value: Any) -> Any:
    if value is None:
        return FrozenDict()
    return freeze(value) if isinstance(value, Mapping) else value


def _kwargs_field() -> Any:
    return attrs.field(factory=FrozenDict, converter=_as_frozen, validator=v.mapping)


def _transforms_field() -> Any:
    return attrs.field(default=(), converter=_as_tuple, validator=_transforms, kw_only=True)


# ---------------------------------------------------------------------------------------------
# source records
# ---------------------------------------------------------------------------------------------


# Checkpoint options of the sources that load a checkpoint file into an nn.Module (module, function,
# torch_hub, timm), keyword-only: the file's expected sha256 (verified before loading), a key prefix
# to strip (e.g. "module."), a converter (the import path of a function ``state_dict -> state_dict``
# renaming a foreign layout into the model's, as timm's ``checkpoint_filter_fn``; applied after the
# prefix is stripped and before the strict key check), strict key matching. They are fields declared
# in each record rather than an attrs base class, because attrs puts inherited fields first, which
# would reorder each record's repr and its dumped YAML.


def _sha256_field() -> Any:
    return attrs.field(default=None, validator=v.sha256, kw_only=True)


def _prefix_field() -> Any:
    return attrs.field(default=None, validator=v.optional_str, kw_only=True)


def _converter_field() -> Any:
    return attrs.field(default=None, validator=v.optional_import_path, kw_only=True)


def _strict_field() -> Any:
    return attrs.field(default=True, validator=v.boolean, kw_only=True)


# The seed of the random weights a build makes (a model built without pretrained weights, the
# layers a checkpoint does not cover): `adapters.build` seeds torch's generator with it while
# the source builds, so one spec gives one set of weights. Keyword-only, last in each record.
def _seed_field() -> Any:
    return attrs.field(default=0, validator=v.seed, kw_only=True)


@attrs.frozen
class RegistrySpec:
    """A named entry of the adapters registry (eva's ``ModelFromRegistry``).

    ``model_kwargs`` override the entry's own arguments; ``out_indices`` there (last n
    blocks, or block indices) asks for feature maps, as in eva. ``seed``, when set, replaces
    the entry's own (null: the entry's, 0 unless it says otherwise).
    """

    model_name: str = attrs.field(validator=v.non_empty_str)
    model_kwargs: FrozenDict = attrs.field(
        factory=FrozenDict, converter=_as_frozen, validator=[v.mapping, v.registry_kwargs]
    )
    transforms: tuple[Transform, ...] = _transforms_field()
    seed: int | None = attrs.field(default=None, validator=v.optional_seed, kw_only=True)


@attrs.frozen
class ModuleSpec:
    """A ``torch.nn.Module`` class, called with ``init_args`` (an eva ``class_path`` config)."""

    class_path: str = attrs.field(validator=v.import_path)
    init_args: FrozenDict = _kwargs_field()  # noqa: RUF009 (attrs field factory)
    checkpoint_path: str | None = attrs.field(default=None, validator=v.optional_str)
    transforms: tuple[Transform, ...] = _transforms_field()
    checkpoint_sha256: str | None = _sha256_field()
    checkpoint_prefix: str | None = _prefix_field()
    checkpoint_converter: str | None = _converter_field()
    strict: bool = _strict_field()
    seed: int = _seed_field()


@attrs.frozen
class FunctionSpec:
    """A factory returning an ``nn.Module`` (eva's ``ModelFromFunction``), e.g.
    ``timm.create_model`` or ``torch.hub.load``, called with ``arguments``."""

    path: str = attrs.field(validator=v.import_path)
    arguments: FrozenDict = _kwargs_field()  # noqa: RUF009 (attrs field factory)
    checkpoint_path: str | None = attrs.field(default=None, validator=v.optional_str)
    transforms: tuple[Transform, ...] = _transforms_field()
    checkpoint_sha256: str | None = _sha256_field()
    checkpoint_prefix: str | None = _prefix_field()
    checkpoint_converter: str | None = _converter_field()
    strict: bool = _strict_field()
    seed: int = _seed_field()


@attrs.frozen
class TorchHubSpec:
    """``torch.hub.load`` (eva's ``TorchHubModel``); ``source: local`` loads a local hub dir.

    ``out_indices`` returns intermediate layers via ``get_intermediate_layers(reshape=True)``.
    """

    repo_or_dir: str = attrs.field(validator=v.non_empty_str)
    model_name: str = attrs.field(validator=v.non_empty_str)
    source: str = attrs.field(default="github", validator=v.one_of("github", "local"))
    pretrained: bool = attrs.field(default=True, validator=v.boolean)
    checkpoint_path: str | None = attrs.field(default=None, validator=v.optional_str)
    out_indices: int | tuple[int, ...] | None = attrs.field(
        default=None, converter=_as_tuple, validator=v.out_indices
    )
    norm: bool = attrs.field(default=False, validator=v.boolean)
    trust_repo: bool = attrs.field(default=True, validator=v.boolean)
    model_kwargs: FrozenDict = _kwargs_field()  # noqa: RUF009 (attrs field factory)
    transforms: tuple[Transform, ...] = _transforms_field()
    checkpoint_sha256: str | None = _sha256_field()
    checkpoint_prefix: str | None = _prefix_field()
    checkpoint_converter: str | None = _converter_field()
    strict: bool = _strict_field()
    seed: int = _seed_field()


@attrs.frozen
class TimmSpec:
    """``timm.create_model`` (eva's ``TimmModel``). ``pretrained`` defaults to True as in eva;
    ``out_indices`` (last n blocks, or block indices) returns (B, C, H, W) feature maps."""

    model_name: str = attrs.field(validator=v.non_empty_str)
    pretrained: bool = attrs.field(default=True, validator=v.boolean)
    checkpoint_path: str | None = attrs.field(default=None, validator=v.optional_str)
    out_indices: int | tuple[int, ...] | None = attrs.field(
        default=None, converter=_as_tuple, validator=v.out_indices
    )
    model_kwargs: FrozenDict = _kwargs_field()  # noqa: RUF009 (attrs field factory)
    transforms: tuple[Transform, ...] = _transforms_field()
    checkpoint_sha256: str | None = _sha256_field()
    checkpoint_prefix: str | None = _prefix_field()
    checkpoint_converter: str | None = _converter_field()
    strict: bool = _strict_field()
    seed: int = _seed_field()


@attrs.frozen
class HuggingFaceSpec:
    """``transformers.AutoModel.from_pretrained`` (eva's ``HuggingFaceModel``).

    Remote code runs only when ``trust_remote_code`` is true; safetensors are preferred.
    """

    model_name_or_path: str = attrs.field(validator=v.non_empty_str)
    model_kwargs: FrozenDict = _kwargs_field()  # noqa: RUF009 (attrs field factory)
    trust_remote_code: bool = attrs.field(default=False, validator=v.boolean)
    transforms: tuple[Transform, ...] = _transforms_field()
    seed: int = _seed_field()


@attrs.frozen
class OnnxSpec:
    """An ONNX file served by ONNX Runtime (eva's ``ONNXModel``)."""

    path: str = attrs.field(validator=v.non_empty_str)
    device: str = attrs.field(default="cpu", validator=v.one_of("cpu", "cuda"))
    providers: tuple[str, ...] | None = attrs.field(
        default=None, converter=_as_tuple, validator=v.providers
    )
    intra_op_num_threads: int | None = attrs.field(default=None, validator=v.optional_positive_int)
    graph_optimization_level: str = attrs.field(
        default="all", validator=v.one_of("disable", "basic", "extended", "all")
    )
    transforms: tuple[Transform, ...] = _transforms_field()


@attrs.frozen
class CustomSpec:
    """A user's own loader (the functional replacement for subclassing eva's ``BaseModel``).

    ``load`` (import path) is called with ``arguments``. It returns an ``nn.Module``, an
    ``adapters.Adapter``, or (with ``forward`` set to the import path of a pure
    ``forward(params, x)``) the params that forward needs.
    """

    load: str = attrs.field(validator=v.import_path)
    forward: str | None = attrs.field(default=None, validator=v.optional_import_path)
    arguments: FrozenDict = _kwargs_field()  # noqa: RUF009 (attrs field factory)
    transforms: tuple[Transform, ...] = _transforms_field()
    seed: int = _seed_field()


@attrs.frozen
class FlaxSpec:
    """A Flax ``linen`` module (import path) built with ``init_args`` and applied with
    ``module.apply``; params come from ``checkpoint_path`` (msgpack or safetensors) or are
    initialised from ``seed`` on an input of ``input_shape``."""

    module: str = attrs.field(validator=v.import_path)
    init_args: FrozenDict = _kwargs_field()  # noqa: RUF009 (attrs field factory)
    checkpoint_path: str | None = attrs.field(default=None, validator=v.optional_str)
    seed: int = attrs.field(default=0, validator=v.seed)
    input_shape: tuple[int, ...] = attrs.field(
        default=(1, 3, 224, 224), converter=_as_tuple, validator=v.shape
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


def transform_tag(record: Transform) -> str:
    """The ``transform:`` tag of a transform record.

    Args:
        record: a transform record.

    Returns:
        Its tag in our format, e.g. ``"cls_token"`` for a `ClsToken`.

    Raises:
        SpecError: ``record`` is not a transform record (lists the tags).
    """
    return tag_of(record, TRANSFORMS, "transform", "a transform record")


def tag_of(record: Any, tags: Mapping[str, type], key: str, expected: str) -> str:
    """The tag of ``record`` in ``tags`` (tag -> record type), else a `SpecError` on ``key``."""
    for tag, cls in tags.items():
        if type(record) is cls:
            return tag
    raise SpecError(key, expected, record, choices=tags)
