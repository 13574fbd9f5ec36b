"""Reading an ``embed --engine ray`` directory back as one `Embeddings`, and refusing one
that does not hold together.

The manifest is trusted for what it is, never for what it claims: before any row is
returned, its shard list must be the plan of one job (blocks 0..K-1 in order, each named
after its index, row ranges contiguous, disjoint and covering the job's rows), its row count
the sum of the shards' own, and every shard file must be the one it lists (SHA-256) with a
header that agrees (the same job, index and row range) and the rows it lists: (n, D) float32
embeddings, ``n`` labels, ``n`` item names and ``n`` ids, increasing across the directory.
A manifest edited to claim more rows, to list a shard twice or to drop one is refused, with
the shard or field named and the fix (rerun the same embed command).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from specs.internal import sha256_file

from ..embeddings import EMBEDDINGS_FORMAT, MANIFEST, Embeddings, aligned_empty
from ..errors import EmbedError
from ..out_dtypes import OUT_DTYPES
from .shards import MANIFEST_FORMAT, SHARD_FORMAT, ShardInfo, normal_job, shard_name, stored_dtype

RERUN = "rerun the same embed command to rewrite it"


def load_sharded(path: str | os.PathLike[str]) -> Embeddings:
    """Read an ``embed --engine ray`` directory as one `Embeddings` (rows in dataset order).

    Raises:
        EmbedError: no readable manifest, or a manifest that does not match its shards (see
            the module docstring): a missing or changed shard, a shard listed twice or left
            out, row ranges that overlap or leave a gap, a row count that is not the shards'.
    """
    root = Path(path)
    manifest = _read_manifest(root)
    infos = check_manifest(manifest, root)
    parts = [_read_shard(root, info, manifest["job"]) for info in infos]
    _check_rows(parts, infos, root, _dtype(manifest["job"], root))
    dims = {p["embeddings"].shape[1] for p in parts if len(p["ids"])}
    if len(dims) > 1:
        raise EmbedError(
            f"embeddings directory: {str(root)!r} has shards of different widths "
            f"{sorted(dims)}; its files come from different runs: {RERUN}"
        )
    emb = aligned_empty((int(manifest["rows"]), dims.pop() if dims else 0), np.float32)
    filled = 0
    for p in parts:
        n = len(p["ids"])
        if n:
            emb[filled : filled + n] = p["embeddings"]
        filled += n
    items = [item for p in parts for item in p["items"]]
    metadata = {**manifest["metadata"], "format": EMBEDDINGS_FORMAT, "items": json.dumps(items)}
    labels = np.concatenate([p["labels"] for p in parts]).astype(np.int64)
    ids = np.concatenate([p["ids"] for p in parts]).astype(np.int64)
    return Embeddings(emb, labels, ids, metadata)


def _read_manifest(root: Path) -> dict[str, Any]:
    file = root / MANIFEST
    try:
        manifest = json.loads(file.read_text())
    except (OSError, ValueError) as err:
        raise EmbedError(
            f"embeddings directory: cannot read {str(file)!r} ({err}); a directory is complete "
            "once 'embed --engine ray' wrote its manifest: rerun it"
        ) from err
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise EmbedError(
            f"embeddings directory: expected a manifest of format {MANIFEST_FORMAT!r}, got "
            f"{got!r} in {str(root)!r}"
        )
    return manifest


def _bad(root: Path, what: str) -> EmbedError:
    return EmbedError(f"embeddings directory: {str(root / MANIFEST)!r} {what}; {RERUN}")


def check_manifest(manifest: Mapping[str, Any], root: Path) -> list[ShardInfo]:
    """The manifest's shards, once its list is the plan of one job (see the module
    docstring); the files themselves are checked by `load_sharded`.

    Raises:
        EmbedError: a field missing or of the wrong type, a shard listed twice or out of
            order, a gap or an overlap in the row ranges, a row count that is not their sum.
    """
    job, entries = manifest.get("job"), manifest.get("shards")
    rows = job.get("rows") if isinstance(job, dict) else None
    if not isinstance(entries, list) or not _is_count(rows):
        raise _bad(root, "lacks its job's row count or its shard list (fields job.rows, shards)")
    if not _is_count(manifest.get("rows")) or not isinstance(manifest.get("metadata"), dict):
        raise _bad(root, "lacks its row count or metadata (fields rows, metadata)")
    infos = []
    stop = 0
    for k, entry in enumerate(entries):
        info = _shard_info(entry, root)
        if info.index != k or info.file != shard_name(k):
            raise _bad(
                root,
                f"lists {info.file!r} (index {info.index}) as shard {k}: a shard listed twice, "
                f"left out or out of order (expected {shard_name(k)!r})",
            )
        if info.start != stop or not info.start < info.stop or info.rows > info.stop - info.start:
            raise _bad(
                root,
                f"gives shard {info.file!r} the rows [{info.start}, {info.stop}) holding "
                f"{info.rows}; expected a range starting at {stop} (right after the previous "
                "shard's), not empty, and at most as many rows as it spans",
            )
        stop = info.stop
        infos.append(info)
    if stop != rows:
        raise _bad(root, f"has shards covering the rows [0, {stop}), its job has {rows}")
    if manifest["rows"] != sum(i.rows for i in infos):
        raise _bad(
            root,
            f"claims {manifest['rows']} rows, its shards hold {sum(i.rows for i in infos)}",
        )
    return infos


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _shard_info(entry: Any, root: Path) -> ShardInfo:
    fields = {f.name: f.type for f in attrs.fields(ShardInfo)}
    ok = isinstance(entry, dict) and set(entry) == set(fields)
    ok = ok and all(
        isinstance(entry[k], str) if t == "str" else _is_count(entry[k]) for k, t in fields.items()
    )
    if not ok:
        raise _bad(
            root,
            f"has a shard entry {str(entry)[:200]!r}; expected the fields "
            f"{', '.join(fields)} (file and sha256 strings, the others counts)",
        )
    return ShardInfo(**entry)


def _read_shard(root: Path, info: ShardInfo, job: Mapping[str, Any]) -> dict[str, Any]:
    """A shard's tensors and item names, once it is the file the manifest lists and its own
    header says it is that block of that job."""
    from safetensors import safe_open

    file = root / info.file
    if not file.is_file() or sha256_file(file) != info.sha256:
        raise EmbedError(
            f"embeddings directory: shard {str(file)!r} is "
            f"{'missing' if not file.is_file() else 'not the file the manifest lists'} "
            f"(checksum differs); {RERUN}"
        )
    with safe_open(str(file), framework="numpy") as f:
        meta = f.metadata() or {}
        part: dict[str, Any] = {k: f.get_tensor(k) for k in f.keys()}
    header = {k: meta.get(k) for k in ("format", "index", "start", "stop")}
    listed = {
        "format": SHARD_FORMAT,
        **{k: str(getattr(info, k)) for k in ("index", "start", "stop")},
    }
    if header != listed or normal_job(_json(meta.get("job"))) != normal_job(job):
        differ = sorted(k for k in listed if header[k] != listed[k]) or ["job"]
        raise EmbedError(
            f"embeddings directory: shard {str(file)!r} says it is another block or job than "
            f"the manifest lists ({', '.join(differ)} differ{'s' if len(differ) == 1 else ''}); "
            f"{RERUN}"
        )
    part["items"] = _json(meta.get("items"))
    return part


def _json(text: str | None) -> Any:
    try:
        return json.loads(text or "null")
    except ValueError:
        return None


def _dtype(job: Mapping[str, Any], root: Path) -> str:
    """The dtype the job stored its embeddings in (one of ``OUT_DTYPES``)."""
    dtype = stored_dtype(job)
    if dtype not in OUT_DTYPES:
        raise _bad(root, f"its job's out_dtype {dtype!r} is not one of {', '.join(OUT_DTYPES)}")
    return dtype


def _check_rows(
    parts: Sequence[dict[str, Any]], infos: Sequence[ShardInfo], root: Path, dtype: str
) -> None:
    """Every shard holds ``rows`` rows: (n, D) embeddings in the job's ``dtype`` (read back as
    float32), n labels, n ids increasing across the whole directory (no row twice), n item
    names."""
    last = -1
    for info, p in zip(infos, parts, strict=True):
        n = info.rows
        emb, labels, ids, items = (p.get(k) for k in ("embeddings", "labels", "ids", "items"))
        shapes_ok = (
            all(isinstance(a, np.ndarray) for a in (emb, labels, ids))
            and emb.ndim == 2
            and emb.dtype == np.dtype(dtype)
            and emb.shape[0] == labels.shape[0] == ids.shape[0] == n
            and labels.ndim == ids.ndim == 1
            and ids.dtype.kind == "i"
            and isinstance(items, list)
            and len(items) == n
        )
        if not shapes_ok:
            raise EmbedError(
                f"embeddings directory: shard {info.file!r} does not hold the {n} rows the "
                f"manifest lists ((n, D) {dtype} embeddings, n labels, ids and item names); "
                f"{RERUN}"
            )
        if n and (ids[0] <= last or (np.diff(ids) <= 0).any()):
            raise EmbedError(
                f"embeddings directory: shard {info.file!r} repeats or reorders dataset "
                f"positions (ids); every row must appear once, in dataset order; {RERUN}"
            )
        last = int(ids[-1]) if n else last
