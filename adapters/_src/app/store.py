"""The embeddings file ``embed`` writes: checked before any work (never an input, always
writable), written with `atomic_write`, read back (a single ``.safetensors`` file, or an
``embed --engine ray`` directory, which `ray.reader` reads).

The file holds ``embeddings`` (N, D) float32 (float16 with ``embed --out-dtype float16``:
half the size; read back as float32), ``labels`` (N,) int64 and ``ids`` (N,) int64, with the
spec (YAML: its ``precision`` among it), the preprocessing, the class and item names, the
``precision`` the backbone ran at and the stored ``dtype`` as string metadata.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from specs.internal import atomic_write

from .embeddings import EMBEDDINGS_FORMAT, MANIFEST, Embeddings, as_aligned
from .errors import EmbedError
from .out_dtypes import check_storable
from .out_paths import check_output_path


def stored_as(emb: Embeddings, dtype: str) -> Embeddings:
    """``emb`` with its embeddings in ``dtype`` and the metadata saying so (``dtype``, and the
    ``precision`` of the spec that made them: the file records both).

    Raises:
        CliError: an embedding beyond float16's range (65504), which would be stored as inf.
    """
    import attrs

    values = emb.embeddings
    check_storable(values, dtype)
    metadata = {**emb.metadata, "dtype": dtype, "precision": spec_precision(emb.metadata)}
    return attrs.evolve(emb, embeddings=values.astype(dtype, copy=False), metadata=metadata)


def spec_precision(metadata: Mapping[str, str]) -> str:
    """The ``precision`` of the spec an embeddings file's metadata names (``32-true`` when it
    names none)."""
    import specs

    try:
        precision = getattr(specs.loads(metadata.get("spec", "")), "precision", None)
    except (specs.SpecError, ValueError):
        precision = None
    return str(precision or "32-true")


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
    """Read embeddings written by ``embed``: a ``.safetensors`` file, or the directory that
    ``embed --engine ray`` writes (read as if it were one file, once its manifest and shards
    agree).

    Every field is per row, in dataset order: row ``i`` is ``embeddings[i]`` (a (D,) float32
    vector), ``labels[i]`` (its class index, ``-1`` without labels), ``ids[i]`` and
    ``items[i]`` (its item name: the image's path relative to the folder, or its index in an
    array file). ``ids[i]`` is the row's position in the full dataset as ``embed`` listed it
    (``load_dataset(data)``: the sorted folder with its unreadable files, before ``--limit``),
    which joins the rows back to the images; it is not an index into ``items``, which holds
    the embedded rows only (after an unreadable image, ``ids`` and row numbers part).

    Args:
        path: the ``.safetensors`` file or the ``embed --engine ray`` directory.

    Returns:
        An ``Embeddings`` record: ``embeddings`` (N, D) float32 (C-contiguous and 64-byte
        aligned: ``interop.to_jax`` shares it without a copy), ``labels`` (N,) int64,
        ``ids`` (N,) int64, ``metadata`` (strings: ``spec`` YAML, ``preprocess`` JSON,
        ``pooling``, ``data``, ``class_names`` / ``items`` / ``skipped`` JSON lists), and the
        properties ``items`` (N item names; empty if none were recorded) and
        ``class_names``.

    Raises:
        ValueError: (the application's ``EmbedError``) the path is missing, is not a file
            ``embed`` wrote, or its rows do not hold together (fields of different lengths;
            for a directory, a manifest that does not match its shards).

    Example::

        emb = adapters.load_embeddings("emb.safetensors")
        for name, vector, label in zip(emb.items, emb.embeddings, emb.labels):
            ...
    """
    from safetensors import safe_open

    p = Path(path)
    if p.is_dir():
        from .ray.reader import load_sharded

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
    _check_rows(p, emb, tensors["labels"], tensors["ids"], metadata)
    return Embeddings(emb, tensors["labels"], tensors["ids"], metadata)


def _check_rows(
    path: Path, emb: np.ndarray, labels: np.ndarray, ids: np.ndarray, meta: Mapping[str, str]
) -> None:
    """One row per embedding in every field: (N, D) embeddings, (N,) labels and ids, and N
    item names unless none were recorded (a record made by hand may have none)."""
    try:
        items = json.loads(meta.get("items", "[]"))
    except ValueError:
        items = None
    n = emb.shape[0] if emb.ndim == 2 else -1
    named = isinstance(items, list) and len(items) in (0, n)
    if not (labels.shape == ids.shape == (n,) and named):
        got = f"embeddings {emb.shape}, labels {labels.shape}, ids {ids.shape}, "
        got += f"{len(items) if isinstance(items, list) else 'unreadable'} item names"
        raise EmbedError(
            f"embeddings file: {str(path)!r} does not hold one row per embedding (got {got}); "
            "it was changed after 'embed' wrote it: embed again"
        )


def is_embeddings_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a directory with a manifest (a finished ``embed --engine ray``)."""
    return (Path(path) / MANIFEST).is_file()
