"""The embeddings file: checked before any work (never an input, always writable), written
with `atomic_write`, read back (a single file, or an ``embed --engine ray`` directory)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from specs._src.atomic import atomic_write

from .embed import EMBEDDINGS_FORMAT, Embeddings, EmbedError, as_aligned
from .out_paths import check_output_path as check_output_path  # where it was
from .out_paths import spec_inputs as spec_inputs


def save_embeddings(emb: Embeddings, out: str | os.PathLike[str]) -> Path:
    """Write ``emb`` to ``out`` (.safetensors) with `atomic_write`: all or nothing, with the
    mode a plain ``open`` would give."""
    from safetensors.numpy import save_file

    data = emb.metadata.get("data")
    path = check_output_path(out, inputs={"data": data} if data else None)
    with atomic_write(path) as staged:
        save_file(
            {"embeddings": emb.embeddings, "labels": emb.labels, "ids": emb.ids},
            str(staged),
            metadata=dict(emb.metadata),
        )
    return path


def load_embeddings(path: str | os.PathLike[str]) -> Embeddings:
    """Read a file written by `save_embeddings`, or a directory written by
    ``embed --engine ray`` (`shards.load_sharded`) as if it were one file."""
    from safetensors import safe_open

    p = Path(path)
    if p.is_dir():
        from .shards import load_sharded

        return load_sharded(p)
    if not p.is_file():
        raise EmbedError(f"embeddings file: {str(p)!r} does not exist")
    try:
        with safe_open(str(p), framework="numpy") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:
        raise EmbedError(f"embeddings file: cannot read {str(p)!r} as safetensors: {err}") from err
    missing = {"embeddings", "labels", "ids"} - set(tensors)
    if missing or metadata.get("format") != EMBEDDINGS_FORMAT:
        raise EmbedError(
            f"embeddings file: expected a file written by the 'embed' command with tensors "
            f"embeddings, labels, ids, got {str(p)!r} with {sorted(tensors)}"
        )
    emb = as_aligned(np.asarray(tensors["embeddings"], dtype=np.float32))
    return Embeddings(emb, tensors["labels"], tensors["ids"], metadata)
