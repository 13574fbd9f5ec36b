"""What every runtime cache key is made of: the spec, the module's architecture, a digest of
the weights, the example input's signature and the torch version (`source_payload`). Each
runtime keeps its own key, adding its format, its own versions and whatever else its files
depend on, and hashes the whole (`hex_key`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import attrs
import torch

from ..adapter import Adapter


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


def source_payload(
    adapter: Adapter, example_input: Any, dynamic_batch: bool, weights: str | None = None
) -> dict[str, Any]:
    """What a runtime's files depend on before the runtime itself: keying on the weights (not
    just the spec) keeps a random-init spec or an edited checkpoint from being served a stale
    model. ``weights`` is ``params_digest(adapter.params)`` when the caller has it already."""
    return {
        "spec": _canonical(adapter.spec),
        "module": repr(adapter.module),
        "params": weights if weights is not None else params_digest(adapter.params),
        "input": _input_signature(example_input),
        "dynamic_batch": dynamic_batch,
        "torch": torch.__version__,
    }


def hex_key(payload: Mapping[str, Any]) -> str:
    """The sha256 hex digest of a JSON-able key payload (key order does not matter)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
