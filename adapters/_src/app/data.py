"""Datasets for `embed` / `probe`: loading, preprocessing, and a prefetching batch loader.

A dataset is ``digits`` (scikit-learn's bundled 8x8 digits), an image folder (one sub-folder
per class, PIL-readable files), or a ``.npz`` / ``.npy`` array of images (+ labels). Images
become float32 ``(batch, channels, height, width)`` torch tensors preprocessed with a
`Preprocess` record (resize, channels, normalisation), decoded in a background thread so the
backbone never waits. For a CUDA backbone the thread also pins each batch (page-locked host
memory) and the consumer copies it with ``non_blocking=True``, so the host-to-device copy
overlaps the work already queued on the GPU.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch

from ..preprocess import Preprocess
from .images import decode_image, preprocess_batch
from .images import raw_pixels as raw_pixels  # re-exported: the baseline reads datasets

#: file name endings read from an image folder (others, such as README files, are ignored)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


class DataError(ValueError):
    """Bad dataset input: the message names the argument, expected, got, and the fix."""


# ---------------------------------------------------------------------------------------------
# datasets
# ---------------------------------------------------------------------------------------------


@attrs.frozen(eq=False)
class Dataset:
    """Labelled images, either held in memory (``images``) or as files (``paths``).

    Attributes:
        name: what the user passed (``digits``, a folder, an array file).
        ids: one string per item (file path relative to the folder, or ``"index"``).
        labels: (N,) int64 class indices, ``-1`` when the data has no labels.
        class_names: name of each class index.
        images: (N, H, W) or (N, H, W, C) float32 in [0, 1], or None for a folder.
        paths: the image files, or None for in-memory data.
        index: (N,) int64 position of each item in the full dataset (before ``--limit``).
    """

    name: str
    ids: tuple[str, ...]
    labels: np.ndarray
    class_names: tuple[str, ...]
    images: np.ndarray | None = None
    paths: tuple[Path, ...] | None = None
    index: np.ndarray = attrs.field(default=None)

    def __attrs_post_init__(self) -> None:
        if self.index is None:
            object.__setattr__(self, "index", np.arange(len(self.ids), dtype=np.int64))

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def has_labels(self) -> bool:
        return bool(len(self.labels)) and bool((self.labels >= 0).all())

    def subset(self, indices: Sequence[int] | np.ndarray) -> Dataset:
        """The items at ``indices`` (in that order)."""
        idx = np.asarray(indices, dtype=np.int64)
        return Dataset(
            name=self.name,
            ids=tuple(self.ids[i] for i in idx),
            labels=self.labels[idx],
            class_names=self.class_names,
            images=None if self.images is None else self.images[idx],
            paths=None if self.paths is None else tuple(self.paths[i] for i in idx),
            index=self.index[idx],
        )


def load_dataset(
    data: str, *, labels: str | None = None, limit: int | None = None, seed: int = 0
) -> Dataset:
    """Load ``digits``, an image folder, or a ``.npz`` / ``.npy`` file of images.

    Args:
        data: ``"digits"``, a folder with one sub-folder of images per class, a ``.npz`` with
            ``images`` (and ``labels``) arrays, or a ``.npy`` of images (N, H, W[, C]).
        labels: a ``.npy`` of (N,) labels for a ``.npy`` of images.
        limit: keep a fixed-seed random subset of this many items (every class keeps its
            share), in their original order.
        seed: seed of that subset.

    Raises:
        DataError: a missing path, an unsupported kind of file, labels not matching images.
    """
    if labels is not None and not data.endswith(".npy"):
        raise DataError(
            f"--labels: only used with a .npy of images, got --data {data!r}; "
            "put labels in the .npz ('labels') or in class sub-folders"
        )
    if data == "digits":
        ds = _digits()
    else:
        path = Path(data)
        if not path.exists():
            raise DataError(
                f"--data: expected 'digits', an image folder or a .npz/.npy file, got {data!r}, "
                "which does not exist; check the path"
            )
        if path.is_dir():
            ds = _folder(path)
        elif path.suffix in (".npz", ".npy"):
            ds = _arrays(path, labels)
        else:
            raise DataError(
                f"--data: expected 'digits', an image folder or a .npz/.npy file, got the file "
                f"{data!r}; convert it to one of those"
            )
    if limit is not None:
        if limit < 1:
            raise DataError(f"--limit: expected an integer >= 1, got {limit}")
        if limit < len(ds):
            keep = np.sort(np.random.default_rng(seed).permutation(len(ds))[:limit])
            ds = ds.subset(keep)
    return ds


def _digits() -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)  # (1797, 8, 8), ink in [0, 16]
    return Dataset(
        name="digits",
        ids=tuple(str(i) for i in range(len(images))),
        labels=bunch.target.astype(np.int64),
        class_names=tuple(str(c) for c in bunch.target_names),
        images=images,
    )


def _folder(root: Path) -> Dataset:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(
            f"--data: expected an image folder with one sub-folder per class, got {str(root)!r} "
            "with no sub-folders; put each class's images in its own sub-folder"
        )
    paths: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        for dirpath, dirnames, filenames in os.walk(root / name):
            dirnames.sort()
            for fname in sorted(filenames):
                if fname.lower().endswith(IMAGE_EXTENSIONS):
                    paths.append(Path(dirpath) / fname)
                    labels.append(label)
    if not paths:
        raise DataError(
            f"--data: expected image files ({', '.join(IMAGE_EXTENSIONS)}) in the class "
            f"sub-folders of {str(root)!r}, found none"
        )
    return Dataset(
        name=str(root),
        ids=tuple(str(p.relative_to(root)) for p in paths),
        labels=np.asarray(labels, dtype=np.int64),
        class_names=tuple(classes),
        paths=tuple(paths),
    )


def _arrays(path: Path, labels_path: str | None) -> Dataset:
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                keys = set(archive.files)
                image_key = next((k for k in ("images", "x", "X") if k in keys), None)
                if image_key is None:
                    raise DataError(
                        f"--data: expected a .npz with an 'images' array (and 'labels'), got "
                        f"arrays {sorted(keys)}; save it with np.savez(path, images=..., labels=...)"
                    )
                images = archive[image_key]
                label_key = next((k for k in ("labels", "y", "Y") if k in keys), None)
                raw_labels = archive[label_key] if label_key else None
        else:
            images = np.load(path, allow_pickle=False)
            raw_labels = np.load(labels_path, allow_pickle=False) if labels_path else None
    except (OSError, ValueError) as err:
        if isinstance(err, DataError):
            raise
        raise DataError(f"--data: cannot read {str(path)!r} as a NumPy array file: {err}") from err
    images = _as_hwc(images, str(path))
    n = images.shape[0]
    if raw_labels is None:
        label_idx, names = np.full(n, -1, dtype=np.int64), ()
    else:
        raw_labels = np.asarray(raw_labels)
        if raw_labels.ndim != 1 or raw_labels.shape[0] != n:
            raise DataError(
                f"labels: expected one label per image, shape ({n},), got shape "
                f"{tuple(raw_labels.shape)}; make the labels array match the {n} images"
            )
        uniq, label_idx = np.unique(raw_labels, return_inverse=True)
        names = tuple(str(u) for u in uniq)
    return Dataset(
        name=str(path),
        ids=tuple(str(i) for i in range(n)),
        labels=label_idx.astype(np.int64),
        class_names=names,
        images=images,
    )


def _as_hwc(images: np.ndarray, name: str) -> np.ndarray:
    """(N, H, W), (N, H, W, C) or (N, C, H, W) numbers -> float32 in [0, 1], channels last."""
    if images.ndim not in (3, 4) or not np.issubdtype(images.dtype, np.number):
        raise DataError(
            f"--data: expected images of shape (N, H, W) or (N, H, W, C), got "
            f"{images.dtype} {tuple(images.shape)} in {name!r}"
        )
    if images.ndim == 4 and images.shape[-1] not in (1, 3, 4) and images.shape[1] in (1, 3):
        images = np.moveaxis(images, 1, -1)
    if np.issubdtype(images.dtype, np.integer):
        scale = 255.0 if images.max(initial=0) > 1 else 1.0
        return (images / scale).astype(np.float32)
    images = images.astype(np.float32)
    high = float(images.max(initial=0.0))
    return images / high if high > 1.0 else images


# ---------------------------------------------------------------------------------------------
# prefetching loader
# ---------------------------------------------------------------------------------------------


@attrs.define
class LoaderStats:
    """What the loader did: skipped files and where the time went (seconds)."""

    skipped: list[str] = attrs.field(factory=list)
    produce_s: float = 0.0  # decoding + preprocessing, in the background thread
    wait_s: float = 0.0  # time the consumer spent blocked waiting for a batch
    # CPU time of the background thread: what preprocessing takes from the forward's cores
    # (all of it on the CPU path, where that thread runs single-threaded)
    produce_cpu_s: float = 0.0


class UnreadableImageError(DataError):
    """An image file PIL cannot read, with ``strict`` loading."""


_DONE = object()


def iter_batches(
    ds: Dataset,
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

    def produce() -> None:
        # On the CPU the consumer's forward already uses every core: preprocessing with an
        # OpenMP team of its own would put two threads on each core and stall the forward's
        # parallel regions, so this thread preprocesses single-threaded (it stays batches
        # ahead regardless). With a GPU forward the cores are free and it keeps them all.
        threads = torch.get_num_threads()
        if target is None:
            torch.set_num_threads(1)
        try:
            for start in range(0, len(ds), batch_size):
                t0, c0 = time.perf_counter(), time.thread_time()
                batch = _make_batch(ds, pre, start, min(start + batch_size, len(ds)), strict, stats)
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

    thread = threading.Thread(target=produce, name="adapters-prefetch", daemon=True)
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


def _make_batch(
    ds: Dataset, pre: Preprocess, lo: int, hi: int, strict: bool, stats: LoaderStats
) -> tuple[torch.Tensor, np.ndarray] | None:
    if ds.images is not None:
        return preprocess_batch(ds.images[lo:hi], pre), np.arange(lo, hi, dtype=np.int64)
    arrays, index = [], []
    for i in range(lo, hi):
        try:
            arrays.append(decode_image(ds.paths[i], pre))  # type: ignore[index]
        except (OSError, ValueError, SyntaxError) as err:
            if strict:
                raise UnreadableImageError(
                    f"--data: cannot read image {str(ds.paths[i])!r} ({err}); fix or remove it, "  # type: ignore[index]
                    "or drop --strict-images to skip unreadable files"
                ) from err
            stats.skipped.append(ds.ids[i])
            continue
        index.append(i)
    if not arrays:
        return None
    return preprocess_batch(np.stack(arrays), pre), np.asarray(index, dtype=np.int64)
