"""The JAX runtime's on-disk cache: a lowered backbone stored as a ``jax.export`` artifact.

An entry is a directory named after `jax_cache_key` (what every runtime key holds, see
``cache_key.source_payload``, plus the JAX version, this layout's format and the export
platform) holding ``forward.jax`` (``Exported.serialize(vjp_order=1)``: StableHLO with its
first-order VJP, so ``jax.grad`` works on a cache hit) and ``meta.json`` (the output
structure, whether output rows depend on their input rows alone, which lets ``jax.vmap`` fold
into the batch, and what ``cache_entry.py`` records: the key, the weights digest, the sha256 of
``forward.jax``). An entry that does not match them is removed with a `CacheWarning` naming
it, and rebuilt; an entry is built aside and published atomically, so concurrent builds of it
all succeed.

The entries live beside the ONNX exports: ``$FM_ADAPTERS_CACHE/jax`` (or
``~/.cache/fm-adapters/jax``). JAX's persistent compilation cache is switched on under the same
root (``.../xla``) unless the user has chosen one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jax

from specs.internal import atomic_write

from ...adapter import Adapter
from ..cache_entry import cache_root, discard, load, publish, staging
from ..cache_key import hex_key, source_payload

#: bumped whenever the cached layout, the export settings or the key's make-up change
JAX_CACHE_FORMAT = 4
ARTIFACT_FILE = "forward.jax"
#: how warnings name this cache
WHAT = "JAX runtime"


def default_jax_cache_dir() -> Path:
    """``<cache root>/jax``, beside the ONNX Runtime cache's ``<cache root>/onnx``."""
    return cache_root() / "jax"


def jax_cache_key(
    adapter: Adapter,
    example_input: Any,
    dynamic_batch: bool,
    platform: str,
    weights: str | None = None,
) -> str:
    """The hex key of a lowered backbone: what every runtime key holds
    (``cache_key.source_payload``) plus the JAX version, this cache's format and the platform
    the artifact is exported for (``"cpu"``, ``"cuda"``, ...: an artifact runs only there).
    ``weights``: ``params_digest(adapter.params)`` when the caller has it already."""
    payload = source_payload(adapter, example_input, dynamic_batch, weights)
    extra = {"jax": jax.__version__, "format": JAX_CACHE_FORMAT, "platform": platform}
    return hex_key({**payload, **extra})


def enable_compilation_cache(root: Path) -> bool:
    """Point JAX's persistent compilation cache at ``root/xla`` unless one is already chosen
    (``jax_compilation_cache_dir`` set, in the config or ``$JAX_COMPILATION_CACHE_DIR``) or
    that directory cannot be made (an unusable cache location: the lowered-artifact cache
    warns about it).

    Returns:
        Whether this call switched it on.
    """
    if jax.config.jax_compilation_cache_dir or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return False
    path = root / "xla"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    jax.config.update("jax_compilation_cache_dir", str(path))
    return True


def load_entry(
    entry: Path, key: str, weights: str
) -> tuple[jax.export.Exported, dict[str, Any]] | None:
    """The deserialised artifact and meta of an intact entry built for ``key`` from
    ``weights``; None when there is none.

    An entry that is not (another key or weights digest, files not matching their recorded
    sha256, see ``cache_entry.load``) or whose artifact cannot be deserialised is removed with
    a `CacheWarning`, so the caller lowers it again.
    """
    meta = load(entry, key, weights, WHAT)
    if meta is None:
        return None
    if ARTIFACT_FILE not in meta["files"]:
        return discard(entry, f"it lacks {ARTIFACT_FILE}", WHAT)
    # the hash matched, so a failure here is an artifact this JAX cannot read
    try:
        exported = jax.export.deserialize(bytearray((entry / ARTIFACT_FILE).read_bytes()))
    except FileNotFoundError:
        return None  # removed by a concurrent rebuild since it was checked
    except Exception as err:  # jax raises several types for an unreadable artifact
        return discard(entry, f"{ARTIFACT_FILE} cannot be deserialised ({err})", WHAT)
    return exported, meta


def save_entry(
    entry: Path, exported: jax.export.Exported, meta: dict[str, Any], source: str
) -> str | None:
    """Write an entry aside and publish it (see ``cache_entry.publish``); ``meta`` must hold
    ``key`` and ``weights``. ``source`` names where the cache location came from, for the
    warning when it cannot be written.

    Returns:
        None when the entry is in the cache now (this build's or a concurrent one's), else
        why not (after a `CacheWarning`).

    Raises:
        ValueError: JAX cannot serialise the artifact's VJP (nothing is written).
    """
    blob = bytes(exported.serialize(vjp_order=1))
    with staging(entry, source, WHAT) as work:
        if work is None:
            return "the cache location cannot be used"
        with atomic_write(work / ARTIFACT_FILE) as staged:  # flushed to disk before publishing
            staged.write_bytes(blob)
        if publish(work, entry, meta, WHAT) is None:
            return "an unusable entry is in the way"
        return None
