"""The JAX runtime's on-disk cache: a lowered backbone stored as a ``jax.export`` artifact.

An entry is a directory named after `jax_cache_key` (the ONNX Runtime cache's key inputs, see
``ort_cache.cache_key``, plus the JAX version, this layout's format and the export platform)
holding
``forward.jax`` (``Exported.serialize(vjp_order=1)``: StableHLO with its first-order VJP, so
``jax.grad`` works on a cache hit) and ``meta.json`` (the output structure, whether output rows
depend on their input rows alone, which lets ``jax.vmap`` fold into the batch, and the sha256 of
``forward.jax``), written last so that its presence marks a complete entry. An entry whose
files do not match is removed with a `CacheWarning` naming it, and rebuilt.

The entries live beside the ONNX exports: ``$FM_ADAPTERS_CACHE/jax`` (or
``~/.cache/fm-adapters/jax``). JAX's persistent compilation cache is switched on under the same
root (``.../xla``) unless the user has chosen one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import jax

from specs._src.atomic import atomic_write, sha256_file

from ..adapter import Adapter
from .ort_cache import cache_key, default_cache_dir, discard, read_meta

#: bumped whenever the cached layout or the export settings change (2: the batched function
#: exported on a symbolic batch, no longer per example under vmap; ``independent_rows``)
JAX_CACHE_FORMAT = 2
ARTIFACT_FILE = "forward.jax"
META_FILE = "meta.json"
#: how warnings name this cache
WHAT = "JAX runtime"


def default_jax_cache_dir() -> Path:
    """``<cache root>/jax``, beside the ONNX Runtime cache's ``<cache root>/onnx``."""
    return default_cache_dir().parent / "jax"


def jax_cache_key(adapter: Adapter, example_input: Any, dynamic_batch: bool, platform: str) -> str:
    """The hex key of a lowered backbone: the ONNX key's inputs plus the JAX version and the
    platform the artifact is exported for (``"cpu"``, ``"cuda"``, ...: an artifact runs only
    there)."""
    base = cache_key(adapter, example_input, dynamic_batch)
    payload = {
        "onnx_key": base,
        "jax": jax.__version__,
        "format": JAX_CACHE_FORMAT,
        "platform": platform,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def enable_compilation_cache(root: Path) -> bool:
    """Point JAX's persistent compilation cache at ``root/xla`` unless one is already chosen
    (``jax_compilation_cache_dir`` set, in the config or ``$JAX_COMPILATION_CACHE_DIR``).

    Returns:
        Whether this call switched it on.
    """
    if jax.config.jax_compilation_cache_dir or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return False
    path = root / "xla"
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    return True


def load_entry(entry: Path) -> tuple[jax.export.Exported, dict[str, Any]] | None:
    """The deserialised artifact and meta of an intact entry; None when there is none.

    A corrupt entry (meta unreadable, artifact missing or not matching its recorded sha256, or
    not deserialisable) is removed with a `CacheWarning`, so the caller lowers it again.
    """
    artifact = entry / ARTIFACT_FILE
    meta = read_meta(entry, WHAT)
    if meta is None:
        return None
    digest = meta.get("sha256")
    if not isinstance(digest, str) or not artifact.is_file():
        return discard(entry, f"it lacks {ARTIFACT_FILE} or its recorded sha256", WHAT)
    if sha256_file(artifact) != digest:
        return discard(entry, f"{ARTIFACT_FILE} does not match the sha256 recorded for it", WHAT)
    # the hash matched, so a failure here is an artifact this JAX cannot read
    try:
        exported = jax.export.deserialize(bytearray(artifact.read_bytes()))
    except Exception as err:  # jax raises several types for an unreadable artifact
        return discard(entry, f"{ARTIFACT_FILE} cannot be deserialised ({err})", WHAT)
    return exported, meta


def save_entry(entry: Path, exported: jax.export.Exported, meta: dict[str, Any]) -> dict:
    """Write an entry (artifact first, meta last); returns the meta as written.

    Raises:
        ValueError: JAX cannot serialise the artifact's VJP (nothing is written).
    """
    blob = bytes(exported.serialize(vjp_order=1))
    entry.mkdir(parents=True, exist_ok=True)
    with atomic_write(entry / ARTIFACT_FILE) as staged:
        staged.write_bytes(blob)
    meta = {**meta, "sha256": sha256_file(entry / ARTIFACT_FILE)}
    with atomic_write(entry / META_FILE) as staged:
        staged.write_text(json.dumps(meta, indent=2))
    return json.loads(json.dumps(meta))
