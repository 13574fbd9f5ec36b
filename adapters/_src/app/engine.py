"""Embed a dataset with a backbone and store the result as ``.safetensors``.

The file holds ``embeddings`` (N, D) float32, ``labels`` (N,) int64 and ``ids`` (N,) int64
(indices into the dataset), with the spec (YAML), the preprocessing, the class names and the
item names as metadata. It is written atomically: a temp file in the same directory, renamed
at the end, so a failed run never leaves a partial file.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch

import interop
import specs

from ..devices import input_device
from .data import (
    Dataset,
    LoaderStats,
    Preprocess,
    iter_batches,
)
from .errors import EmbedError as EmbedError  # re-exported: embed.EmbedError as before
from .errors import ForwardError as ForwardError

EMBEDDINGS_FORMAT = "fm-adapters/embeddings/v1"
#: XLA's CPU client shares only buffers aligned to this many bytes (it copies the others)
ALIGNMENT = 64


#: what a backbone raises on an input it cannot take: torch's shape checks (RuntimeError),
#: ONNX Runtime's input checks and NumPy / JAX (ValueError, TypeError), indexing (IndexError),
#: the backbone's own shape asserts (timm's ViT: "Input height (48) doesn't match model (32)")
FORWARD_ERRORS = (RuntimeError, ValueError, TypeError, IndexError, AssertionError)
#: the folders of this project's packages: an assert failing in them is a bug of ours, which
#: must surface as itself, never as advice about the input size
_OWN_CODE = tuple(
    str(root) + os.sep
    for root in (
        Path(__file__).resolve().parents[2],  # adapters/
        Path(specs.__file__).resolve().parent,
        Path(interop.__file__).resolve().parent,
    )
)


def run_forward(adapter: Any, x: Any) -> Any:
    """``adapter.forward(adapter.params, x)``, its failure on ``x`` named with ``x``'s shape.

    Raises:
        ForwardError: the forward raised one of `FORWARD_ERRORS` (an ``AssertionError`` only
            when the backbone's code raised it: one raised by this project's code is re-raised).
    """
    try:
        return adapter.forward(adapter.params, x)
    except FORWARD_ERRORS as err:
        if isinstance(err, AssertionError) and _raised_in_own_code(err):
            raise
        lines = str(err).strip().splitlines()
        reason = f"{type(err).__name__}: {lines[0] if lines else ''}"[:300]
        raise ForwardError(tuple(int(d) for d in x.shape), reason) from err


def _raised_in_own_code(err: BaseException) -> bool:
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return False
    return str(Path(tb.tb_frame.f_code.co_filename).resolve()).startswith(_OWN_CODE)


# ---------------------------------------------------------------------------------------------
# preprocessing defaults of a backbone
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# embedding
# ---------------------------------------------------------------------------------------------


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


def pool_features(y: Any) -> tuple[torch.Tensor, str]:
    """Backbone output -> (B, D) features and how they were pooled.

    (B, D) is kept; (B, T, D) tokens give the first (CLS) token; (B, C, H, W) maps are averaged
    over space; a tuple / list of outputs uses its last element; a model output with
    ``last_hidden_state`` uses that. Add a transform to the spec for anything else.
    """
    how = []
    if hasattr(y, "last_hidden_state"):
        y, _ = y.last_hidden_state, how.append("last_hidden_state")
    if isinstance(y, (list, tuple)):
        y, _ = y[-1], how.append("last output")
    if isinstance(y, jax_array_type()):
        return _pool_jax(y, how)
    if not isinstance(y, torch.Tensor):
        y = torch.from_numpy(np.asarray(y))
    _check_rank(y)
    if y.ndim == 3:
        y, _ = y[:, 0], how.append("token 0 (CLS)")
    elif y.ndim == 4:
        y, _ = y.mean(dim=(2, 3)), how.append("spatial mean")
    return y.float(), " -> ".join(how) or "as is"


def jax_array_type() -> type | tuple[type, ...]:
    """``jax.Array`` if JAX is imported already (a JAX backbone's output), else no type."""
    import sys

    jax = sys.modules.get("jax")
    return jax.Array if jax is not None else ()


def _pool_jax(y: Any, how: list[str]) -> tuple[Any, str]:
    """`pool_features` of a JAX output, in JAX (the runtime='jax' backbone's features)."""
    import jax.numpy as jnp

    _check_rank(y)
    if y.ndim == 3:
        y, _ = y[:, 0], how.append("token 0 (CLS)")
    elif y.ndim == 4:
        y, _ = y.mean(axis=(2, 3)), how.append("spatial mean")
    return y.astype(jnp.float32), " -> ".join(how) or "as is"


def _check_rank(y: Any) -> None:
    if y.ndim not in (2, 3, 4):
        raise EmbedError(
            f"backbone output: expected (B, D), (B, T, D) or (B, C, H, W), got shape "
            f"{tuple(y.shape)}; add an output transform to the spec"
        )


def embed_dataset(
    adapter: Any,
    ds: Dataset,
    pre: Preprocess,
    *,
    batch_size: int = 64,
    strict: bool = False,
    progress: bool = True,
    stats: LoaderStats | None = None,
    on_batch: Callable[[int], None] | None = None,
    device: str | torch.device | None = None,
) -> Embeddings:
    """Run the backbone over the dataset; batches are prefetched by a background thread.

    Args:
        device: where batches go before ``forward``; default `input_device` (the torch
            adapter's device). On CUDA the loader pins them and copies with
            ``non_blocking=True``.

    Returns:
        `Embeddings` with (N, D) float32 features for the readable images.

    Raises:
        ForwardError: the backbone cannot take the preprocessed batch (``pre.size``).
    """
    device = input_device(adapter) if device is None else device
    from tqdm.auto import tqdm

    stats = stats if stats is not None else LoaderStats()
    out: np.ndarray | None = None  # (N, D), allocated aligned once D is known
    filled = 0
    indices: list[np.ndarray] = []
    pooling = "as is"
    bar = tqdm(
        total=len(ds), unit="img", desc="embed", disable=None if progress else True, leave=False
    )
    t0 = time.perf_counter()
    try:
        with torch.inference_mode():
            batches = iter_batches(ds, pre, batch_size, strict=strict, stats=stats, device=device)
            for x, idx in batches:
                y, pooling = pool_features(run_forward(adapter, x))
                if out is None:
                    out = aligned_empty((len(ds), y.shape[1]), np.float32)
                out[filled : filled + len(idx)] = _host(y)
                filled += len(idx)
                indices.append(idx)
                bar.update(len(idx))
                if on_batch is not None:
                    on_batch(len(idx))
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    if out is None:
        raise EmbedError(
            f"--data: no readable images in {ds.name!r} ({len(stats.skipped)} skipped)"
        )
    local = np.concatenate(indices)
    emb = out[:filled]  # a prefix of an aligned C-contiguous buffer stays both
    metadata = {
        "format": EMBEDDINGS_FORMAT,
        "spec": spec_yaml(adapter.spec),
        "data": ds.name,
        "preprocess": json.dumps(pre.as_dict()),
        "pooling": pooling,
        "class_names": json.dumps(list(ds.class_names)),
        "items": json.dumps([ds.ids[i] for i in local]),
        "skipped": json.dumps(stats.skipped),
        "seconds": f"{seconds:.3f}",
    }
    labels = ds.labels[local].astype(np.int64)
    return Embeddings(emb, labels, ds.index[local].astype(np.int64), metadata)


def _host(y: Any) -> np.ndarray:
    """(B, D) features as NumPy for the output buffer (a JAX array via the DLPack bridge)."""
    if isinstance(y, torch.Tensor):
        return y.cpu().numpy()
    return interop.to_numpy(y)


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


def spec_yaml(spec: Any, *, redact: bool = True) -> str:
    """The spec as YAML text (our ``source:``-tagged format), as printed and stored.

    Args:
        spec: a spec record.
        redact: hide the credentials of URLs (``https://user:TOKEN@host/...``, ``?sig=...``)
            and values under keys such as ``token``: the text is printed (``inspect``) and
            stored (embeddings files, manifests). False only for text that is built again
            (the Ray workers' copy of the spec).
    """
    import yaml

    import specs
    from specs.internal import redact as redacted

    data = specs.unstructure(spec)
    return yaml.safe_dump(redacted(data) if redact else data, sort_keys=False)
