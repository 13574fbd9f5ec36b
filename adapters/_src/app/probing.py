"""Linear / MLP probing of embeddings: split, train a JAX/Flax head, score it next to a
baseline on the raw pixels.

Embeddings reach JAX through ``interop.to_jax(..., copy=False)``: the head trains on the very
buffer the backbone wrote.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from .embeddings import as_aligned
from .errors import ProbeError

#: fractions of the train / validation / test splits
SPLIT = (0.6, 0.2, 0.2)
#: AdamW step size per head (features are standardised first)
DEFAULT_LR = {"linear": 1e-2, "mlp": 1e-3}


def stratified_split(
    labels: np.ndarray, *, seed: int = 0, fractions: tuple[float, float, float] = SPLIT
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) index arrays; each class split in the same proportions, seeded.

    Raises:
        ProbeError: fewer than 2 classes, or a class with fewer than 3 examples.
    """
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2 or counts.min() < 3:
        got = dict(zip(classes.tolist(), counts.tolist(), strict=True))
        raise ProbeError(
            f"labels: expected at least 2 classes with at least 3 examples each for a "
            f"train/val/test split, got counts {got}; "
            "use more data (raise --limit)"
        )
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[], [], []]
    for c in classes:
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val = max(1, round(len(idx) * fractions[1]))
        n_test = max(1, round(len(idx) * fractions[2]))
        parts[1] += idx[:n_val].tolist()
        parts[2] += idx[n_val : n_val + n_test].tolist()
        parts[0] += idx[n_val + n_test :].tolist()
    train, val, test = (np.sort(np.asarray(p, dtype=np.int64)) for p in parts)
    return train, val, test


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy and macro F1."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }


def baseline_scores(
    pixels: np.ndarray, labels: np.ndarray, split: tuple[np.ndarray, ...], *, seed: int = 0
) -> dict[str, float]:
    """Logistic regression on raw pixels (N, F), standardised, trained on the same split."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train, _, test = split
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, random_state=seed))
    with warnings.catch_warnings():
        # a baseline, not a tuned model: stopping at max_iter is fine and expected
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(pixels[train], labels[train])
    return scores(labels[test], clf.predict(pixels[test]))


@attrs.frozen(eq=False)
class ProbeResult:
    """Everything `probe` measured (serialisable with `as_dict`).

    ``best_epoch`` counts from 1, as printed: the epoch whose head was kept (its scores are at
    index ``best_epoch - 1`` of each ``history`` list).
    """

    head: str
    metrics: Mapping[str, float]
    baseline: Mapping[str, float] | None
    chance: float
    history: Mapping[str, Any]
    best_epoch: int
    split_sizes: Mapping[str, int]
    confusion: np.ndarray
    class_names: tuple[str, ...]
    seconds: Mapping[str, float]
    zero_copy: bool

    def as_dict(self) -> dict[str, Any]:
        out = attrs.asdict(self)
        out["confusion"] = self.confusion.tolist()
        out["class_names"] = list(self.class_names)
        return out


def run_probe(
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    pixels: np.ndarray | None = None,
    class_names: tuple[str, ...] = (),
    head: str = "linear",
    epochs: int = 100,
    seed: int = 0,
    batch_size: int = 128,
    learning_rate: float | None = None,
) -> ProbeResult:
    """Split, train a head on the train split, select on val, score on test.

    Args:
        embeddings: (N, D) float32 features, C-contiguous and 64-byte aligned (as `embed`
            writes them), handed to JAX without a copy; anything else is copied once into
            such a buffer first.
        labels: (N,) int class indices.
        pixels: (N, F) raw pixels of the same items for the baseline, or None to skip it.
        learning_rate: AdamW step size; default 1e-2 for the linear head, 1e-3 for the MLP.
    """
    import jax.numpy as jnp
    from sklearn.metrics import confusion_matrix

    import interop

    from .. import heads

    if head not in DEFAULT_LR:
        raise ProbeError(f"--head: expected one of {', '.join(DEFAULT_LR)}, got {head!r}")
    if epochs < 1:
        raise ProbeError(f"--epochs: expected an integer >= 1, got {epochs}")
    labels = np.asarray(labels, dtype=np.int64)
    if (labels < 0).any():
        raise ProbeError(
            "labels: the data has no labels; probe needs an image folder with class "
            "sub-folders, a .npz with 'labels', or --labels for a .npy"
        )
    split = stratified_split(labels, seed=seed)
    t0 = time.perf_counter()
    embeddings = as_aligned(np.asarray(embeddings, dtype=np.float32))
    features = interop.to_jax(embeddings, copy=False)  # zero-copy: raises rather than copy
    zero_copy = interop.data_ptr(features) == interop.data_ptr(embeddings)
    y = jnp.asarray(labels.astype(np.int32))
    train, val, test = (jnp.asarray(s) for s in split)
    k = len(class_names) if class_names else int(labels.max()) + 1
    fitted = heads.fit(
        features[train],
        y[train],
        head=head,
        num_classes=k,
        val=(features[val], y[val]),
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate or DEFAULT_LR[head],
        seed=seed,
    )
    pred = heads.predict(fitted, features[test])
    t1 = time.perf_counter()
    y_test = labels[split[2]]
    base = baseline_scores(pixels, labels, split, seed=seed) if pixels is not None else None
    t2 = time.perf_counter()
    return ProbeResult(
        head=head,
        metrics=scores(y_test, pred),
        baseline=base,
        chance=float(np.bincount(labels[split[0]]).max() / len(split[0])),
        history={k: list(v) for k, v in fitted.history.items()},
        best_epoch=fitted.best_epoch + 1,  # heads.fit counts from 0; people, from 1
        split_sizes={"train": len(split[0]), "val": len(split[1]), "test": len(split[2])},
        confusion=confusion_matrix(y_test, pred, labels=np.arange(k)),
        class_names=tuple(class_names) or tuple(str(i) for i in range(k)),
        seconds={"head": t1 - t0, "baseline": t2 - t1},
        zero_copy=bool(zero_copy),
    )


def format_table(result: ProbeResult) -> str:
    """Test-split metrics of the head next to the baseline, as aligned text."""
    rows = [("", f"{result.head} head", "baseline (pixels)")]
    for key in ("accuracy", "balanced_accuracy", "macro_f1"):
        base = f"{result.baseline[key]:.3f}" if result.baseline else "n/a"
        rows.append((key, f"{result.metrics[key]:.3f}", base))
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, width, strict=True)).rstrip() for r in rows]
    lines.append(
        f"(test split of {result.split_sizes['test']}; chance {result.chance:.3f}; "
        f"best epoch {result.best_epoch} on val)"
    )
    return "\n".join(lines)
