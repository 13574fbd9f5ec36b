"""Datasets for ``embed`` / ``probe``: what ``--data`` names, read into a `Dataset`.

A dataset is ``digits`` (scikit-learn's bundled 8x8 digits), an image folder (one sub-folder
per class, PIL-readable files), or a ``.npz`` / ``.npy`` array of images (+ labels). Images in
memory are held as float32 in [0, 1]; a folder's are read by the loader (`loader`), batch by
batch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np

from ..errors import DataError

#: file name endings read from an image folder (others, such as README files, are ignored)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


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
                        f"arrays {sorted(keys)}; save it with "
                        "np.savez(path, images=..., labels=...)"
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
