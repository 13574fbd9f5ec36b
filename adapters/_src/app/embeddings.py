"""The `Embeddings` record (one row per embedded image, every field per row) and its aligned
buffers, which ``interop.to_jax`` shares without a copy."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from .errors import EmbedError

EMBEDDINGS_FORMAT = "fm-adapters/embeddings/v1"
#: the file an ``embed --engine ray`` directory is read from, written last
MANIFEST = "manifest.json"
#: XLA's CPU client shares only buffers aligned to this many bytes (it copies the others)
ALIGNMENT = 64


@attrs.frozen(eq=False)
class Embeddings:
    """Embedded dataset: one row per readable image, every field per row, in dataset order.

    Row ``i`` is ``embeddings[i]``, ``labels[i]``, ``ids[i]`` and ``items[i]``. ``ids`` are not
    indices into ``items``: after an unreadable image (not embedded, so not a row) or with
    ``--limit``, ``ids[i]`` and ``i`` part, and ``items[ids[i]]`` names another image.

    Attributes:
        embeddings: (N, D) float32.
        labels: (N,) int64 (``-1`` without labels).
        ids: (N,) int64: each row's position in the full dataset as it was listed
            (``load_dataset(data).index``: unreadable images counted, before ``--limit``),
            which joins rows back to the images (``load_dataset(data).subset(ids)``).
        metadata: strings stored in the file (spec YAML, preprocessing, class and item names).
    """

    embeddings: np.ndarray
    labels: np.ndarray
    ids: np.ndarray
    metadata: Mapping[str, str]

    @property
    def class_names(self) -> list[str]:
        return json.loads(self.metadata.get("class_names", "[]"))

    @property
    def items(self) -> list[str]:
        """Name of the item behind each row (``items[i]`` names row ``i``): the image's path
        relative to the folder, or its index in an array file."""
        return json.loads(self.metadata.get("items", "[]"))

    def first(self, n: int) -> Embeddings:
        """The first ``n`` rows (all of them if there are fewer), metadata ``items`` to match.

        ``embeddings`` stays a prefix view of the same aligned buffer (no copy).

        Raises:
            EmbedError: ``n`` < 1 (the ``--limit`` flag).
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise EmbedError(f"--limit: expected an integer >= 1, got {n!r}")
        if n >= len(self.ids):
            return self
        metadata = dict(self.metadata)
        if "items" in metadata:
            metadata["items"] = json.dumps(self.items[:n])
        return Embeddings(self.embeddings[:n], self.labels[:n], self.ids[:n], metadata)


def aligned_empty(shape: tuple[int, ...], dtype: Any, alignment: int = ALIGNMENT) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on an ``alignment``-byte boundary,
    so that ``interop.to_jax(..., copy=False)`` can share it with XLA."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(nbytes + alignment, dtype=np.uint8)
    offset = (-raw.ctypes.data) % alignment
    return raw[offset : offset + nbytes].view(dtype).reshape(shape)


def as_aligned(x: np.ndarray, alignment: int = ALIGNMENT) -> np.ndarray:
    """``x`` itself if C-contiguous and aligned, else an aligned copy."""
    if x.flags.c_contiguous and x.ctypes.data % alignment == 0:
        return x
    out = aligned_empty(x.shape, x.dtype, alignment)
    out[...] = x
    return out
