"""A prefetching batch loader: a pool of worker threads decodes and preprocesses batches ahead
of the backbone, so it never waits, and the batches come out in order, each the same tensor as
the calling thread would make (`make_batch` runs each batch whole, in one worker). For a CUDA
backbone the workers also pin each batch (page-locked host memory) and the consumer copies it
with ``non_blocking=True``, so the host-to-device copy overlaps the work already queued on the
GPU.

The workers are threads: PIL's decoding and resizing and torch's preprocessing release the GIL,
and a thread starts at once, where a spawned process imports torch first and sends each batch
back through a pipe (``benchmarks/embed_pipeline.py`` measures the pipeline).
"""

from __future__ import annotations

import concurrent.futures
import os
import time
from collections import deque
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
    produce_s: float = 0.0  # decoding + preprocessing, summed over the workers
    wait_s: float = 0.0  # time the consumer spent blocked waiting for a batch
    # CPU time of the workers: what preprocessing takes from the forward's cores (on the CPU
    # path each worker runs single-threaded)
    produce_cpu_s: float = 0.0
    workers: int = 1  # 0: batches made in the consumer's thread


def default_workers() -> int:
    """The number of cores this process may run on (``--workers``'s default)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


def iter_batches(
    ds: Any,
    pre: Preprocess,
    batch_size: int,
    *,
    strict: bool = False,
    prefetch: int = 2,
    stats: LoaderStats | None = None,
    device: str | torch.device | None = None,
    workers: int = 1,
) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
    """Yield ``(x, index)``: x (B, channels, H, W) float32 and the (B,) dataset indices.

    ``workers`` workers decode and preprocess up to ``workers + prefetch`` batches ahead; the
    batches are yielded in order and equal, bit for bit, what ``workers=0`` makes (every batch
    made in the calling thread, when it is asked for: nothing overlaps the forward). Unreadable
    files are skipped (recorded in ``stats.skipped``, in dataset order) or, with ``strict``,
    raise `UnreadableImageError` (the first one in dataset order).

    Args:
        device: where ``x`` is yielded (None: the CPU, as made). For a CUDA device each batch
            is pinned and copied with ``non_blocking=True``.
        workers: how many threads decode (>= 0). On the CPU each runs torch single-threaded
            (the forward has the cores); else they share torch's threads.

    Raises:
        DataError: ``batch_size`` or ``workers`` out of range (names the flag).
    """
    _check(batch_size, workers)
    target = None if device is None else torch.device(device)
    pin = target is not None and target.type == "cuda"
    on_cpu = target is None or target.type == "cpu"
    if on_cpu:
        target = None  # batches are made on the CPU: nothing to move
    stats = stats if stats is not None else LoaderStats()
    stats.workers = workers
    starts = [(lo, min(lo + batch_size, len(ds))) for lo in range(0, len(ds), batch_size)]
    if workers == 0:
        made = (_in_thread(ds, pre, lo, hi, strict, pin) for lo, hi in starts)
    else:
        made = _pooled(ds, pre, starts, strict, pin, on_cpu, workers, workers + max(1, prefetch))
    try:
        while True:
            t0 = time.perf_counter()
            found = next(made, None)
            stats.wait_s += time.perf_counter() - t0
            if found is None:
                return
            batch, one = found
            _merge(stats, one)
            if batch is None:
                continue
            x = batch[0]
            if pin and not x.is_pinned():
                x = x.pin_memory()
            yield (x if target is None else x.to(target, non_blocking=pin)), batch[1]
    finally:
        made.close()  # the pool stops now, not when the garbage collector finds it


def _pooled(
    ds: Any,
    pre: Preprocess,
    starts: list[tuple[int, int]],
    strict: bool,
    pin: bool,
    on_cpu: bool,
    workers: int,
    ahead: int,
) -> Iterator[tuple[tuple[torch.Tensor, np.ndarray] | None, LoaderStats]]:
    """Each batch of ``starts`` made by a pool of ``workers``, at most ``ahead`` submitted
    ahead of the one yielded, in order (see `iter_batches`)."""
    threads = torch.get_num_threads()
    per_worker = 1 if on_cpu else max(1, threads // workers)
    pool = concurrent.futures.ThreadPoolExecutor(
        workers, "adapters-loader", initializer=torch.set_num_threads, initargs=(per_worker,)
    )
    todo = iter(starts)
    pending: deque[concurrent.futures.Future] = deque()
    try:
        while True:
            while len(pending) < ahead:
                lohi = next(todo, None)
                if lohi is None:
                    break
                pending.append(pool.submit(_in_thread, ds, pre, *lohi, strict, pin))
            if not pending:
                return
            yield pending.popleft().result()
    finally:
        for f in pending:
            f.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        # set_num_threads in a worker also sets the count threads started later begin with
        torch.set_num_threads(threads)


def _check(batch_size: int, workers: int) -> None:
    if batch_size < 1:
        raise DataError(f"--batch-size: expected an integer >= 1, got {batch_size}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise DataError(f"--workers: expected an integer >= 0, got {workers!r}")


def _merge(stats: LoaderStats, made: LoaderStats) -> None:
    """One batch's stats into the run's (in batch order, so skipped files stay in order)."""
    stats.skipped.extend(made.skipped)
    stats.produce_s += made.produce_s
    stats.produce_cpu_s += made.produce_cpu_s


def _in_thread(
    ds: Any, pre: Preprocess, lo: int, hi: int, strict: bool, pin: bool
) -> tuple[tuple[torch.Tensor, np.ndarray] | None, LoaderStats]:
    """One batch made by a worker: (the batch or None, its stats)."""
    made = LoaderStats()
    t0, c0 = time.perf_counter(), time.thread_time()
    batch = make_batch(ds, pre, lo, hi, strict, made)
    if pin and batch is not None:
        batch = (batch[0].pin_memory(), batch[1])
    made.produce_s, made.produce_cpu_s = time.perf_counter() - t0, time.thread_time() - c0
    return batch, made


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
