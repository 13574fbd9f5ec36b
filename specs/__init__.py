"""Immutable backbone spec records and their converter (dict / YAML / eva configs).

Plain data: importing ``specs`` imports neither torch nor jax.
"""

from ._src.errors import SpecError
from ._src.eva import EVA_TRANSFORMS, EVA_WRAPPERS
from ._src.frozen import FrozenDict
from ._src.io import FORMATS, dump, dumps, load, loads
from ._src.precision import PRECISIONS
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
    transform_tag,
)
from ._src.structure import structure, structure_transform
from ._src.tags import register_source_tag, source_of, unregister_source_tag
from ._src.unstructure import unstructure, unstructure_transform

__all__ = [
    "EVA_TRANSFORMS",
    "EVA_WRAPPERS",
    "FORMATS",
    "PRECISIONS",
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
    "dump",
    "dumps",
    "load",
    "loads",
    "register_source_tag",
    "source_of",
    "structure",
    "structure_transform",
    "transform_tag",
    "unregister_source_tag",
    "unstructure",
    "unstructure_transform",
]
