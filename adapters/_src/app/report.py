"""`probe --report DIR`: report.json plus PNG plots (learning curve, confusion matrix)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from specs._src.atomic import atomic_write

from .probe import ProbeResult


def write_report(result: ProbeResult, out_dir: str | os.PathLike[str], **extra: Any) -> list[Path]:
    """Write ``report.json``, ``learning_curve.png`` and ``confusion_matrix.png`` to ``out_dir``
    (created if missing); returns the paths written. ``extra`` goes into the JSON as is.

    Each file is written with `atomic_write`: a reader never sees a half-written one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = out / "report.json"
    text = json.dumps({**result.as_dict(), **_plain(extra)}, indent=2) + "\n"
    with atomic_write(report) as staged:
        staged.write_text(text)

    curve = out / "learning_curve.png"
    fig, ax = plt.subplots(figsize=(5, 3.5))
    epochs = range(1, len(result.history["train_loss"]) + 1)
    ax.plot(epochs, result.history["train_loss"], label="train loss")
    if "val_loss" in result.history:
        ax.plot(epochs, result.history["val_loss"], label="val loss")
        ax2 = ax.twinx()
        ax2.plot(epochs, result.history["val_accuracy"], color="tab:green", label="val accuracy")
        ax2.set_ylabel("val accuracy")
        ax2.set_ylim(0, 1)
    ax.axvline(result.best_epoch + 1, color="grey", linestyle=":", label="kept epoch")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy")
    ax.legend(loc="center right")
    ax.set_title(f"{result.head} head")
    fig.tight_layout()
    with atomic_write(curve) as staged:
        fig.savefig(staged, dpi=80)
    plt.close(fig)

    confusion = out / "confusion_matrix.png"
    k = len(result.class_names)
    fig, ax = plt.subplots(figsize=(1.5 + 0.4 * k, 1.2 + 0.4 * k))
    ax.imshow(result.confusion, cmap="Blues")
    ax.set_xticks(range(k), result.class_names, rotation=90 if k > 10 else 0)
    ax.set_yticks(range(k), result.class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"test accuracy {result.metrics['accuracy']:.3f}")
    for i in range(k):
        for j in range(k):
            if result.confusion[i, j]:
                ax.text(j, i, str(result.confusion[i, j]), ha="center", va="center", fontsize=7)
    fig.tight_layout()
    with atomic_write(confusion) as staged:
        fig.savefig(staged, dpi=80)
    plt.close(fig)
    return [report, curve, confusion]


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
