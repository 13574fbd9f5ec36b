"""A prefetching batch loader: a background thread decodes and preprocesses batches ahead of
the backbone, so it never waits. For a CUDA backbone the thread also pins each batch
(page-locked host memory) and the consumer copies it with ``non_blocking=True``, so the
host-to-device copy overlaps the work already queued on the GPU."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import attrs
import numpy as np
import torch

from ...preprocess import Preprocess
from ..errors import DataError, UnreadableImageError
from .images import decode_image, decode_image_timm, preprocess_batch


@attrs.define
class LoaderStats:
    """What the loader did: skipped files and where the time went (seconds)."""

    skipped: list[str] = attrs.field(factory=list)
    produce_s: float = 0.0  # decoding + preprocessing, in the background thread
    wait_s: float = 0.0  # time the consumer spent blocked waiting for a batch
    # CPU time of the background thread: what preprocessing takes from the forward's cores
    # (all of it on the CPU path, where that thread runs single-threaded)
    produce_cpu_s: float = 0.0


_DONE = object()


def iter_batches(
    ds: Any,
    pre: Preprocess,
    batch_size: int,
    *,
    strict: bool = False,
    prefetch: int = 2,
    stats: LoaderStats | None = None,
    device: str | torch.device | None = None,
) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
    """Yield ``(x, index)``: x (B, channels, H, W) float32 and the (B,) dataset indices.

    A background thread decodes and preprocesses up to ``prefetch`` batches ahead. Unreadable
    files are skipped (recorded in ``stats.skipped``) or, with ``strict``, raise
    `UnreadableImageError`.

    Args:
        device: where ``x`` is yielded (None: the CPU, as made). For a CUDA device each batch
            is pinned in the background thread and copied with ``non_blocking=True``.
    """
    if batch_size < 1:
        raise DataError(f"--batch-size: expected an integer >= 1, got {batch_size}")
    target = None if device is None else torch.device(device)
    pin = target is not None and target.type == "cuda"
    if target is not None and target.type == "cpu":
        target = None  # batches are made on the CPU: nothing to move
    stats = stats if stats is not None else LoaderStats()
    q: queue.Queue[Any] = queue.Queue(maxsize=max(1, prefetch))
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    args = (ds, pre, batch_size, strict, stats, pin, target is None, put)
    thread = threading.Thread(target=_produce, args=args, name="adapters-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            t0 = time.perf_counter()
            item = q.get()
            stats.wait_s += time.perf_counter() - t0
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            if target is not None:
                item = (item[0].to(target, non_blocking=pin), item[1])
            yield item
    finally:
        stop.set()
        thread.join()


def make_batch(
    ds: Any, pre: Preprocess, lo: int, hi: int, strict: bool, stats: LoaderStats
) -> tuple[torch.Tensor, np.ndarray] | None:
    """The batch of dataset positions [lo, hi): (x, the positions of its readable images), or
    None when none is readable. Unreadable files are recorded in ``stats.skipped`` or, with
    ``strict``, raise `UnreadableImageError`."""
    if ds.images is not None:
        return preprocess_batch(ds.images[lo:hi], pre), np.arange(lo, hi, dtype=np.int64)
    arrays, index = [], []
    decode = decode_image_timm if pre.pipeline == "timm" else decode_image
    for i in range(lo, hi):
        try:
            arrays.append(decode(ds.paths[i], pre))
        except (OSError, ValueError, SyntaxError) as err:
            if strict:
                raise UnreadableImageError(
                    f"--data: cannot read image {str(ds.paths[i])!r} ({err}); fix or remove it, "
                    "or drop --strict-images to skip unreadable files"
                ) from err
            stats.skipped.append(ds.ids[i])
            continue
        index.append(i)
    if not arrays:
        return None
    index_array = np.asarray(index, dtype=np.int64)
    if pre.pipeline == "timm":  # timm's transform already normalised each image
        return torch.stack(arrays), index_array
    return preprocess_batch(np.stack(arrays), pre), index_array


def _produce(
    ds: Any,
    pre: Preprocess,
    batch_size: int,
    strict: bool,
    stats: LoaderStats,
    pin: bool,
    on_cpu: bool,
    put: Any,
) -> None:
    """The background thread of `iter_batches`: make every batch, ``put`` it, then `_DONE`."""
    # On the CPU the consumer's forward already uses every core: preprocessing with an
    # OpenMP team of its own would put two threads on each core and stall the forward's
    # parallel regions, so this thread preprocesses single-threaded (it stays batches
    # ahead regardless). With a GPU forward the cores are free and it keeps them all.
    threads = torch.get_num_threads()
    if on_cpu:
        torch.set_num_threads(1)
    try:
        for start in range(0, len(ds), batch_size):
            t0, c0 = time.perf_counter(), time.thread_time()
            batch = make_batch(ds, pre, start, min(start + batch_size, len(ds)), strict, stats)
            if pin and batch is not None:
                batch = (batch[0].pin_memory(), batch[1])
            stats.produce_s += time.perf_counter() - t0
            stats.produce_cpu_s += time.thread_time() - c0
            if batch is not None and not put(batch):
                return
        put(_DONE)
    except BaseException as err:  # handed to the consumer, re-raised there
        put(err)
    finally:
        # set_num_threads also sets the count threads started later begin with: restore it
        torch.set_num_threads(threads)
