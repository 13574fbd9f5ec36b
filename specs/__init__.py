"""Immutable backbone spec records and their converter (dict / YAML / eva configs).

Plain data: importing ``specs`` imports neither torch nor jax.
"""

from ._src.errors import SpecError
from ._src.frozen import FrozenDict
from ._src.records import (
    SOURCES,
    SPEC_TYPES,
    TORCH_SOURCES,
    TRANSFORM_TYPES,
    TRANSFORMS,
    AsDiscrete,
    ClsToken,
    CustomSpec,
    FlaxSpec,
    FunctionSpec,
    HiddenState,
    HuggingFaceSpec,
    L2Normalize,
    MeanPatch,
    ModuleSpec,
    OnnxSpec,
    PatchGrid,
    RegistrySpec,
    Select,
    Spec,
    TimmSpec,
    TorchHubSpec,
    Transform,
    source_of,
    transform_tag,
)

__all__ = [
    "SOURCES",
    "SPEC_TYPES",
    "TORCH_SOURCES",
    "TRANSFORMS",
    "TRANSFORM_TYPES",
    "AsDiscrete",
    "ClsToken",
    "CustomSpec",
    "FlaxSpec",
    "FrozenDict",
    "FunctionSpec",
    "HiddenState",
    "HuggingFaceSpec",
    "L2Normalize",
    "MeanPatch",
    "ModuleSpec",
    "OnnxSpec",
    "PatchGrid",
    "RegistrySpec",
    "Select",
    "Spec",
    "SpecError",
    "TimmSpec",
    "TorchHubSpec",
    "Transform",
    "source_of",
    "transform_tag",
]
