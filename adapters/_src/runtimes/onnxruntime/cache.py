"""The ONNX Runtime fast path's on-disk cache: where it lives and the key an export is stored
under (everything the file depends on). Entries themselves (checked against their recorded
key, weights digest and files when read; built aside and published atomically) are
``cache_entry.py``'s."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import onnxruntime as ort
import torch

from ..adapter import Adapter
from .cache_entry import CACHE_ENV as CACHE_ENV
from .cache_entry import CacheWarning as CacheWarning
from .cache_entry import cache_root

#: bumped whenever the cached layout or export settings change (2: attention fused, 3: the
#: meta file holds a sha256 of every model file, 4: and the weights digest, checked on a hit)
CACHE_FORMAT = 4
MODEL_FILE = "model.onnx"
#: how warnings name this cache
WHAT = "ONNX Runtime"


def default_cache_dir() -> Path:
    """Where ONNX exports are cached: ``<cache root>/onnx`` (``$FM_ADAPTERS_CACHE``, else the
    XDG cache directory's ``fm-adapters``, see ``cache_entry.cache_root``). Not created."""
    return cache_root() / "onnx"


def _canonical(value: Any) -> Any:
    """A JSON-able, order-independent rendering of a spec (attrs records, mappings, ...)."""
    if attrs.has(type(value)):
        fields = {f.name: _canonical(getattr(value, f.name)) for f in attrs.fields(type(value))}
        return {"__type__": f"{type(value).__module__}.{type(value).__qualname__}", **fields}
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def params_digest(params: Mapping[str, Any]) -> str:
    """sha256 over every parameter's name, dtype, shape and bytes (CPU copies if needed)."""
    h = hashlib.sha256()
    for name in sorted(params):
        t = params[name]
        if not isinstance(t, torch.Tensor):
            h.update(f"{name}={t!r};".encode())
            continue
        t = t.detach()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        if t.numel():
            flat = t.contiguous().reshape(-1)
            data = flat.view(torch.uint8) if flat.dtype != torch.bool else flat.to(torch.uint8)
            h.update(memoryview(data.cpu().numpy()))
    return h.hexdigest()


def _input_signature(example_input: Any) -> Any:
    def sig(a: Any) -> list[Any]:
        return [str(getattr(a, "dtype", type(a).__name__)), list(a.shape)[1:]]

    if isinstance(example_input, Mapping):
        return {str(k): sig(v) for k, v in example_input.items()}
    if isinstance(example_input, (list, tuple)):
        return [sig(v) for v in example_input]
    return sig(example_input)


def cache_key(
    adapter: Adapter, example_input: Any, dynamic_batch: bool = True, weights: str | None = None
) -> str:
    """The hex key a fast-path export is cached under (see the module docstring); ``weights``
    is ``params_digest(adapter.params)`` when the caller has it already."""
    payload = {
        "format": CACHE_FORMAT,
        "spec": _canonical(adapter.spec),
        "module": repr(adapter.module),
        "params": weights if weights is not None else params_digest(adapter.params),
        "input": _input_signature(example_input),
        "dynamic_batch": dynamic_batch,
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
