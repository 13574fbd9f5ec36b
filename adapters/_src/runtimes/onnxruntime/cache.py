"""The ONNX Runtime runtime's cache: where its entries live, what an entry holds, and the key
an export is stored under. Entries themselves (checked against their recorded key, weights
digest and files when read; built aside and published atomically) are ``cache_entry.py``'s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnxruntime as ort

from ...adapter import Adapter
from ..cache_entry import cache_root
from ..cache_key import hex_key, source_payload

#: bumped whenever the cached layout or the export settings change
CACHE_FORMAT = 4
MODEL_FILE = "model.onnx"
#: how warnings name this cache
WHAT = "ONNX Runtime"


def default_cache_dir() -> Path:
    """Where ONNX exports are cached: ``<cache root>/onnx`` (``$FM_ADAPTERS_CACHE``, else the
    XDG cache directory's ``fm-adapters``, see ``cache_entry.cache_root``). Not created."""
    return cache_root() / "onnx"


def cache_key(
    adapter: Adapter, example_input: Any, dynamic_batch: bool = True, weights: str | None = None
) -> str:
    """The hex key an export is cached under: what every runtime key holds
    (``cache_key.source_payload``), this cache's format and the onnxruntime version;
    ``weights`` is ``params_digest(adapter.params)`` when the caller has it already."""
    payload = source_payload(adapter, example_input, dynamic_batch, weights)
    return hex_key({**payload, "format": CACHE_FORMAT, "onnxruntime": ort.__version__})
