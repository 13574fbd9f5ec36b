"""The ONNX Runtime fast path's on-disk cache: where it lives, the key an export is stored
under (everything the file depends on), and entries checked against the sha256 of their files
when read (a corrupt entry is removed with a `CacheWarning` naming it, and rebuilt)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import onnxruntime as ort
import torch

from specs._src.atomic import atomic_write, sha256_file

from ..adapter import Adapter

#: bumped whenever the cached layout or export settings change (2: attention fused, 3: the
#: meta file holds a sha256 of every model file)
CACHE_FORMAT = 3
CACHE_ENV = "FM_ADAPTERS_CACHE"
MODEL_FILE = "model.onnx"
META_FILE = "meta.json"


class CacheWarning(UserWarning):
    """A fast-path cache entry was found corrupt (and is rebuilt)."""


def default_cache_dir() -> Path:
    """Where ONNX exports are cached: ``$FM_ADAPTERS_CACHE/onnx`` when that is set, else the
    XDG cache directory's ``fm-adapters/onnx`` (``$XDG_CACHE_HOME``, or ``~/.cache`` when it
    is unset, empty or relative, as the XDG base directory spec says).

    Returns:
        The directory (not created).
    """
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root).expanduser() / "onnx"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "fm-adapters" / "onnx"


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


def cache_key(adapter: Adapter, example_input: Any, dynamic_batch: bool = True) -> str:
    """The hex key a fast-path export is cached under (see the module docstring)."""
    payload = {
        "format": CACHE_FORMAT,
        "spec": _canonical(adapter.spec),
        "module": repr(adapter.module),
        "params": params_digest(adapter.params),
        "input": _input_signature(example_input),
        "dynamic_batch": dynamic_batch,
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _digests(entry: Path) -> dict[str, str]:
    """sha256 of every model file of a cache entry (the model and its external weights)."""
    return {p.name: sha256_file(p) for p in sorted(entry.iterdir()) if p.name != META_FILE}


def _load_entry(entry: Path) -> dict[str, Any] | None:
    """The meta of a complete, intact cache entry; None when there is none.

    An entry whose meta file cannot be read or whose model files do not match the hashes it
    recorded (a disk error, an edit, a copy cut short) is removed with a `CacheWarning` naming
    it, so that the caller exports it again.
    """
    meta = read_meta(entry)
    files = meta.get("files") if meta is not None else None
    if meta is None:
        return None
    if not isinstance(files, dict) or MODEL_FILE not in files:
        return discard(entry, f"its {META_FILE} records no hashes of the model files")
    found = {p.name for p in entry.iterdir()} - {META_FILE}
    if found != set(files):
        return discard(entry, f"it holds {sorted(found)}, expected {sorted(files)}")
    for name, digest in files.items():
        if sha256_file(entry / name) != digest:
            return discard(entry, f"{name} does not match the sha256 recorded when it was written")
    return meta


def read_meta(entry: Path, what: str = "ONNX Runtime") -> dict[str, Any] | None:
    """An entry's ``meta.json`` as a dict; None when the entry has none, or when it cannot be
    read (then the entry is discarded with a `CacheWarning`, see `discard`)."""
    meta_path = entry / META_FILE
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return discard(entry, f"its {META_FILE} cannot be read ({err})", what)
    if not isinstance(meta, dict):
        return discard(entry, f"its {META_FILE} is not a JSON object", what)
    return meta


def discard(entry: Path, why: str, what: str = "ONNX Runtime") -> None:
    """Remove a corrupt ``what`` cache entry, warning with a `CacheWarning` that names it."""
    warnings.warn(
        f"{what} cache entry {str(entry)!r} is corrupt: {why}; rebuilding it. (The cache "
        f"lives under ${CACHE_ENV} or ~/.cache/fm-adapters; entries can be deleted at any "
        "time.)",
        CacheWarning,
        stacklevel=4,
    )
    shutil.rmtree(entry, ignore_errors=True)
    return None


def _write_json(path: Path, data: Any) -> None:
    with atomic_write(path) as staged:
        staged.write_text(json.dumps(data, indent=2))
