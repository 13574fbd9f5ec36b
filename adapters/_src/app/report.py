"""`probe --report DIR`: report.json plus PNG plots (learning curve, confusion matrix, a 2-D
PCA map of the embeddings)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from specs.internal import atomic_write, current_umask

from .probing import ProbeResult

#: resolution of every PNG (a user reads them on a laptop screen and in a README)
DPI = 110


def write_report(
    result: ProbeResult,
    out_dir: str | os.PathLike[str],
    *,
    subject: str = "",
    embeddings: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    **extra: Any,
) -> list[Path]:
    """Write ``report.json``, ``learning_curve.png``, ``confusion_matrix.png`` and, given the
    embeddings, ``embedding_map.png`` (a 2-D PCA of them coloured by label) to ``out_dir``.

    All or nothing: the files are written into a private directory and moved into place at the
    end, so an error or a Ctrl-C leaves no ``out_dir`` (a new one) or its old files (an
    existing one), never a half-written report.

    Args:
        result: the probe's result.
        out_dir: the directory (created, with its parents, if missing).
        subject: what was probed, for the titles (``"timm/resnet18 on digits"``).
        embeddings: (N, D) features probed; with ``labels`` (N,), the map is drawn.
        extra: written into the JSON as is.

    Returns:
        The paths written.
    """
    import matplotlib

    matplotlib.use("Agg")

    out = Path(out_dir)
    text = json.dumps({**result.as_dict(), **_plain(extra)}, indent=2) + "\n"
    with _staged(out) as work:
        (work / "report.json").write_text(text)
        names = ["report.json"]
        names.append(_learning_curve(result, work, subject).name)
        names.append(_confusion(result, work, subject).name)
        if (
            embeddings is not None and labels is not None and np.shape(embeddings)[-1] >= 2
        ):  # PCA to 2-D needs 2 dims
            names.append(_embedding_map(embeddings, labels, result.class_names, work, subject).name)
    return [out / name for name in names]


@contextlib.contextmanager
def _staged(out: Path) -> Iterator[Path]:
    """A private directory to write the report into, moved into place when the block ends
    without error and removed when it raises (``KeyboardInterrupt`` included).

    A new ``out`` is the staged directory renamed (created in the closest existing folder, its
    missing parents made only then); an existing one receives the staged files by rename
    (`atomic_write`: report.json last)."""
    if out.is_dir():
        with atomic_write(out / "report.json") as staged:
            yield staged.parent
        return
    base = out.parent
    while not base.is_dir() and base != base.parent:
        base = base.parent  # the closest existing folder: the same file system as out
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=base))
    try:
        yield work
        for item in work.iterdir():
            with open(item, "rb") as fh:
                os.fsync(fh.fileno())
        os.chmod(work, 0o777 & ~current_umask())  # mkdtemp's is 0o700; mkdir's is this
        out.parent.mkdir(parents=True, exist_ok=True)
        os.rename(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # gone already when renamed


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    try:
        fig.savefig(path, dpi=DPI)
    finally:
        plt.close(fig)
    return path


def _title(what: str, subject: str) -> str:
    return f"{what}\n{subject}" if subject else what


def _learning_curve(result: ProbeResult, out: Path, subject: str) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    epochs = range(1, len(result.history["train_loss"]) + 1)
    lines = ax.plot(epochs, result.history["train_loss"], label="train loss")
    if "val_loss" in result.history:
        lines += ax.plot(epochs, result.history["val_loss"], label="val loss")
        ax2 = ax.twinx()
        acc = result.history["val_accuracy"]
        lines += ax2.plot(epochs, acc, color="tab:green", label="val accuracy (right axis)")
        ax2.set_ylabel("val accuracy")
        ax2.set_ylim(0, 1.02)
    lines.append(ax.axvline(result.best_epoch, color="grey", linestyle=":", label="kept"))
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy")
    ax.legend(lines, [x.get_label() for x in lines], loc="center right", fontsize=8)
    ax.set_title(_title(f"{result.head} head: learning curve", subject), fontsize=10)
    return _save(fig, out / "learning_curve.png")


def _confusion(result: ProbeResult, out: Path, subject: str) -> Path:
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    k = len(result.class_names)
    side = min(3.5 + 0.45 * k, 20)
    fig, ax = plt.subplots(figsize=(side + 1.0, side))
    display = ConfusionMatrixDisplay(result.confusion, display_labels=list(result.class_names))
    display.plot(ax=ax, cmap="Blues", colorbar=True, xticks_rotation=45 if k > 4 else 0)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    acc = result.metrics["accuracy"]
    ax.set_title(_title(f"confusion matrix (test accuracy {acc:.3f})", subject), fontsize=10)
    return _save(fig, out / "confusion_matrix.png")


def _embedding_map(
    embeddings: np.ndarray, labels: np.ndarray, names: tuple[str, ...], out: Path, subject: str
) -> Path:
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=0)
    xy = pca.fit_transform(np.asarray(embeddings, dtype=np.float64))
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    for c, name in enumerate(names):
        pick = labels == c
        ax.scatter(xy[pick, 0], xy[pick, 1], s=8, alpha=0.7, color=cmap(c % cmap.N), label=name)
    var = pca.explained_variance_ratio_
    ax.set_xlabel(f"PC 1 ({var[0]:.0%} of variance)")
    ax.set_ylabel(f"PC 2 ({var[1]:.0%} of variance)")
    ax.legend(markerscale=2, fontsize=7, loc="best", ncol=1 + len(names) // 12)
    ax.set_title(_title(f"embeddings, PCA to 2-D ({len(labels)} images)", subject), fontsize=10)
    return _save(fig, out / "embedding_map.png")


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
