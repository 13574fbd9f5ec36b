"""Backbones as pure functions: ``adapters.build(spec)`` -> ``Adapter(forward, params, ...)``.

Any source (a registry name, an ``nn.Module`` class, a factory function, timm, torch.hub,
HuggingFace ``transformers``, ONNX, Flax, your own loader) becomes a pure
``forward(params, x)`` plus its ``params``::

    backbone = adapters.build("universal/vit_small_patch16_224_random")
    y = backbone.forward(backbone.params, x)   # pure: depends only on params and x
    y = backbone(x)                            # the same, with its own params
"""

from __future__ import annotations

import importlib
from typing import Any

from ._src.adapter import Adapter
from ._src.build import build
from ._src.errors import ArgumentError, BuildError, ParityError
from ._src.registry import list_models, register, registry_spec, unregister
from ._src.runtimes.onnxruntime import to_onnxruntime
from ._src.sources.table import register_source

#: public names served lazily (PEP 562): their modules import ONNX tooling, the application
#: (``load_embeddings`` reads what the ``embed`` command writes) or are optional
_LAZY = {
    "export_onnx": ("adapters._src.runtimes.onnxruntime.export", "export_onnx"),
    "lower_to_jax": ("adapters._src.runtimes.jax.lower", "lower_to_jax"),
    "load_embeddings": ("adapters._src.app.store", "load_embeddings"),
    "parity": ("adapters._src.runtimes.parity", "parity"),
    "transforms": ("adapters.transforms", None),
    "heads": ("adapters.heads", None),
    "converters": ("adapters.converters", None),
    "networks": ("adapters.networks", None),
    "ParityReport": ("adapters._src.runtimes.parity", "ParityReport"),
}

__all__ = [
    "Adapter",
    "ArgumentError",
    "BuildError",
    "ParityError",
    "ParityReport",
    "build",
    "converters",
    "export_onnx",
    "heads",
    "list_models",
    "load_embeddings",
    "lower_to_jax",
    "networks",
    "parity",
    "register",
    "register_source",
    "registry_spec",
    "to_onnxruntime",
    "transforms",
    "unregister",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'adapters' has no attribute {name!r}")
    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
