"""The sharded embeddings directory that ``embed --engine ray`` writes.

``OUT/`` holds one ``shard-NNNNN.safetensors`` per block of the dataset (a fixed range of
rows: ``shard_batches`` loader batches) and a ``manifest.json`` written last. A shard file has
the same tensors as a single-process embeddings file (``embeddings`` (n, D) float32,
``labels`` and ``ids`` (n,) int64), and in its metadata the job it belongs to, its row range,
its item names and its skipped images. Every file is written to a temp file in ``OUT`` and
renamed, so a shard file that exists is complete: a rerun of the same job keeps it, a job with
another spec (or data, preprocessing, batching) refuses to write beside it.

`reader.load_sharded` reads the directory back as one `Embeddings`, once the manifest and
every shard agree.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from specs.internal import atomic_write, sha256_file

from ..embeddings import MANIFEST
from ..errors import EmbedError

SHARD_FORMAT = "fm-adapters/embeddings-shard/v1"
MANIFEST_FORMAT = "fm-adapters/embeddings-dir/v1"
SHARD_PREFIX = "shard-"
SHARD_SUFFIX = ".safetensors"


@attrs.frozen
class ShardInfo:
    """One complete shard file: its block ``index`` covers dataset positions [start, stop)."""

    file: str
    index: int
    start: int
    stop: int
    rows: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def shard_name(index: int) -> str:
    """File name of block ``index`` (``shard-00003.safetensors``)."""
    return f"{SHARD_PREFIX}{index:05d}{SHARD_SUFFIX}"


def plan_blocks(rows: int, batch_size: int, shard_batches: int) -> list[tuple[int, int]]:
    """[start, stop) dataset positions of each block: ``shard_batches`` loader batches each.

    Blocks start on batch boundaries, so every block's batches are exactly the batches a
    single-process embed forms (the same images go through the backbone together).

    Raises:
        EmbedError: ``batch_size`` or ``shard_batches`` < 1.
    """
    for name, value in (("--batch-size", batch_size), ("shard_batches", shard_batches)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise EmbedError(f"{name}: expected an integer >= 1, got {value!r}")
    step = batch_size * shard_batches
    return [(lo, min(lo + step, rows)) for lo in range(0, rows, step)]


def job_identity(
    *,
    spec_yaml: str,
    preprocess: Mapping[str, Any],
    data: str,
    ids: Sequence[str],
    index: np.ndarray,
    batch_size: int,
    shard_batches: int,
    runtime: str,
    weights: Mapping[str, str],
    out_dtype: str = "float32",
) -> dict[str, Any]:
    """What makes two runs the same job (their shards may be mixed): the spec, the weights
    (``weights.weights_digest``: the same spec text can name a checkpoint whose bytes have
    changed), the preprocessing (its values, not where they came from), the data and its
    items, the batching (it decides which images share a forward pass), the runtime and the
    stored dtype (``out_dtype``; absent when float32, so that directories written before it
    was a choice stay resumable). The precision is the spec's (``precision:``)."""
    digest = hashlib.sha256()
    for item in ids:
        digest.update(item.encode() + b"\0")
    digest.update(np.ascontiguousarray(index, dtype=np.int64).tobytes())
    return {
        "spec": spec_yaml,
        "weights": dict(weights),
        "preprocess": {k: v for k, v in preprocess.items() if k != "origin"},
        "data": data,
        "rows": len(ids),
        "items_sha256": digest.hexdigest(),
        "batch_size": batch_size,
        "shard_batches": shard_batches,
        "runtime": runtime,
    } | ({} if out_dtype == "float32" else {"out_dtype": out_dtype})


def normal_job(job: Mapping[str, Any]) -> dict[str, Any]:
    """``job`` as JSON would read it back (tuples become lists), for comparisons."""
    return json.loads(json.dumps(job))


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    old, new = normal_job(old), normal_job(new)
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


# ---------------------------------------------------------------------------------------------
# the directory: check, scan for complete shards, write shards and the manifest
# ---------------------------------------------------------------------------------------------


def prepare_dir(out: str | os.PathLike[str], job: Mapping[str, Any]) -> dict[int, ShardInfo]:
    """Make ``out`` ready for ``job``; return its complete shards (block index -> info).

    Creates ``out`` if missing; removes temp files a killed run left; keeps shard files of the
    same job and refuses any other content.

    Raises:
        EmbedError: ``out``'s parent directory is missing, ``out`` is a file, holds files
            that are not ours, or holds shards (or a manifest) of a different job.
    """
    path = Path(out)
    if not path.parent.is_dir():
        raise EmbedError(
            f"--out: expected a directory path in an existing directory, got {str(path)!r} whose "
            f"parent {str(path.parent)!r} does not exist; create it first"
        )
    if path.exists() and not path.is_dir():
        raise EmbedError(
            f"--out: with --engine ray the output is a directory of shards, got the existing "
            f"file {str(path)!r}; pass a directory path"
        )
    path.mkdir(exist_ok=True)
    done: dict[int, ShardInfo] = {}
    foreign = []
    for entry in sorted(path.iterdir()):
        name = entry.name
        if name.startswith(f".{SHARD_PREFIX}") and name.endswith(".tmp"):
            # a shard a killed run was writing (atomic_write's private directory): never
            # renamed, so never complete
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        elif name == MANIFEST:
            _check_same_job(_manifest_job(entry), job, path)
        elif name.startswith(SHARD_PREFIX) and name.endswith(SHARD_SUFFIX):
            info, shard_job = _read_shard_header(entry)
            _check_same_job(shard_job, job, path)
            done[info.index] = info
        else:
            foreign.append(name)
    if foreign:
        raise EmbedError(
            f"--out: expected a new or embeddings directory, got {str(path)!r} holding other "
            f"files ({', '.join(foreign[:5])}); pass a new directory"
        )
    return done


def _manifest_job(file: Path) -> Any:
    try:
        manifest = json.loads(file.read_text())
    except (OSError, ValueError) as err:
        raise EmbedError(
            f"--out: cannot read {str(file)!r} ({err}); delete it and rerun: the shards are "
            "checked again and a new manifest is written"
        ) from err
    return manifest.get("job", {}) if isinstance(manifest, dict) else {}


def _check_same_job(old: Mapping[str, Any], new: Mapping[str, Any], path: Path) -> None:
    diff = _differences(old, new)
    if diff:
        raise EmbedError(
            f"--out: {str(path)!r} holds embeddings of a different job ({', '.join(diff)} "
            f"differ{'s' if len(diff) == 1 else ''}); shards of two jobs are never mixed: pass a "
            "new --out, or delete this directory to start over"
        )


def _read_shard_header(path: Path) -> tuple[ShardInfo, dict[str, Any]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            rows = int(f.get_slice("ids").get_shape()[0])
    except Exception as err:  # safetensors raises its own error types for a bad header
        raise EmbedError(f"--out: cannot read the shard {str(path)!r}: {err}; delete it") from err
    if meta.get("format") != SHARD_FORMAT:
        raise EmbedError(
            f"--out: expected shard files written by 'embed --engine ray', got {str(path)!r} "
            f"with format {meta.get('format')!r}; pass a new --out"
        )
    info = ShardInfo(
        file=path.name,
        index=int(meta["index"]),
        start=int(meta["start"]),
        stop=int(meta["stop"]),
        rows=rows,
        sha256=sha256_file(path),
    )
    return info, json.loads(meta["job"])


def write_shard(
    out: Path,
    index: int,
    block: tuple[int, int],
    *,
    embeddings: np.ndarray,
    labels: np.ndarray,
    ids: np.ndarray,
    items: Iterable[str],
    skipped: Iterable[str],
    pooling: str,
    job: Mapping[str, Any],
) -> ShardInfo:
    """Write block ``index`` (dataset positions ``block``) atomically; returns its info.

    Args:
        embeddings: (n, D) float32, stored in the job's ``out_dtype`` (float32 if absent);
            labels, ids: (n,) int64 for the readable images.

    Raises:
        CliError: a value beyond float16's range with ``out_dtype`` float16 (nothing written).
    """
    from safetensors.numpy import save_file

    from ..out_dtypes import check_storable

    dtype = stored_dtype(job)
    check_storable(np.asarray(embeddings), dtype)
    path = out / shard_name(index)
    metadata = {
        "format": SHARD_FORMAT,
        "index": str(index),
        "start": str(block[0]),
        "stop": str(block[1]),
        "job": json.dumps(job),
        "pooling": pooling,
        "items": json.dumps(list(items)),
        "skipped": json.dumps(list(skipped)),
    }
    tensors = {
        "embeddings": np.ascontiguousarray(embeddings, dtype=dtype),
        "labels": np.ascontiguousarray(labels, dtype=np.int64),
        "ids": np.ascontiguousarray(ids, dtype=np.int64),
    }
    with atomic_write(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return ShardInfo(path.name, index, block[0], block[1], len(ids), sha256_file(path))


def stored_dtype(job: Mapping[str, Any]) -> str:
    """The dtype a job stores its embeddings in (``out_dtype``; float32 when absent)."""
    return str(job.get("out_dtype", "float32"))


def write_manifest(
    out: Path,
    shards: Sequence[ShardInfo],
    *,
    job: Mapping[str, Any],
    metadata: Mapping[str, str],
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``manifest.json`` last, atomically: the job, the metadata every embeddings file
    carries (spec, preprocessing, class names, ...; the item names stay in the shards), the
    shard list and the versions."""
    shards = sorted(shards, key=lambda s: s.index)
    manifest = {
        "format": MANIFEST_FORMAT,
        "job": normal_job(job),
        "rows": sum(s.rows for s in shards),
        "metadata": dict(metadata),
        "shards": [s.as_dict() for s in shards],
        "versions": versions(),
        **(extra or {}),
    }
    path = out / MANIFEST
    text = json.dumps(manifest, indent=1)
    with atomic_write(path) as tmp:
        tmp.write_text(text)
    return path


def _shard_meta(out: Path, info: ShardInfo) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(out / info.file), framework="numpy") as f:
        return f.metadata() or {}


def pooling_of(out: Path, done: Mapping[int, ShardInfo]) -> str:
    """How the complete shards ``done`` were pooled (one header read), ``""`` if none."""
    return next((_shard_meta(out, info).get("pooling", "") for info in done.values()), "")


def skipped_of(out: Path, infos: Sequence[ShardInfo]) -> list[str]:
    """The unreadable images of the shards ``infos``, in dataset order."""
    ordered = sorted(infos, key=lambda s: s.index)
    return [n for i in ordered for n in json.loads(_shard_meta(out, i).get("skipped", "[]"))]


def versions() -> dict[str, str | None]:
    """Versions of what computed the embeddings."""
    import importlib.metadata as md

    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("fm-adapters", "torch", "timm", "numpy", "ray"):
        try:
            found[name] = md.version(name)
        except md.PackageNotFoundError:
            found[name] = None
    return found
