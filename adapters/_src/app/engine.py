"""The process engine of ``embed``: a dataset through the backbone in this process, batch by
batch (prefetched by the loader's thread), into one `Embeddings`, each output pooled to
(N, D) features."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import torch

import interop
import specs

from ..devices import input_device
from ..preprocess import Preprocess
from .backbone import run_forward
from .data.datasets import Dataset
from .data.loader import LoaderStats, iter_batches
from .embeddings import EMBEDDINGS_FORMAT, Embeddings, aligned_empty
from .errors import EmbedError
from .progress import Progress


def embed_dataset(
    adapter: Any,
    ds: Dataset,
    pre: Preprocess,
    *,
    batch_size: int = 64,
    strict: bool = False,
    progress: bool = True,
    stats: LoaderStats | None = None,
    device: str | torch.device | None = None,
) -> Embeddings:
    """Run the backbone over the dataset; batches are prefetched by a background thread.

    Args:
        progress: say how far it got (`Progress`: a bar in a terminal, else a plain line).
        stats: filled with what the loader did (skipped files, time spent).
        device: where batches go before ``forward``; default `input_device` (the torch
            adapter's device). On CUDA the loader pins them and copies with
            ``non_blocking=True``.

    Returns:
        `Embeddings` with (N, D) float32 features for the readable images.

    Raises:
        ForwardError: the backbone cannot take the preprocessed batch (``pre.size``).
        EmbedError: no image of ``ds`` could be read.
    """
    device = input_device(adapter) if device is None else device
    stats = stats if stats is not None else LoaderStats()
    out: np.ndarray | None = None  # (N, D), allocated aligned once D is known
    filled = 0
    indices: list[np.ndarray] = []
    pooling = "as is"
    bar = Progress(len(ds), enabled=progress)
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
    except BaseException:
        bar.close(line=False)  # the error (or "interrupted") is the last word
        raise
    bar.close()
    if out is None:
        raise EmbedError(
            f"--data: no readable images in {ds.name!r} ({len(stats.skipped)} skipped)"
        )
    local = np.concatenate(indices)
    metadata = {
        "format": EMBEDDINGS_FORMAT,
        "spec": specs.dumps(adapter.spec, redact=True),
        "data": ds.name,
        "preprocess": json.dumps(pre.as_dict()),
        "pooling": pooling,
        "class_names": json.dumps(list(ds.class_names)),
        "items": json.dumps([ds.ids[i] for i in local]),
        "skipped": json.dumps(stats.skipped),
        "seconds": f"{time.perf_counter() - t0:.3f}",
    }
    labels = ds.labels[local].astype(np.int64)
    # a prefix of an aligned C-contiguous buffer stays both
    return Embeddings(out[:filled], labels, ds.index[local].astype(np.int64), metadata)


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


def _host(y: Any) -> np.ndarray:
    """(B, D) features as NumPy for the output buffer (a JAX array via the DLPack bridge)."""
    if isinstance(y, torch.Tensor):
        return y.cpu().numpy()
    return interop.to_numpy(y)
