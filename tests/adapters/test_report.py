"""`probe --report` plots: the files, their resolution, a confusion matrix sized to the classes,
and a PCA map of the embeddings."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from adapters._src.app.probe import run_probe
from adapters._src.app.report import DPI, write_report


@pytest.mark.parametrize("classes", [2, 10])
def test_report_writes_readable_plots_sized_to_the_classes(tmp_path, classes):
    digits = load_digits()
    pick = digits.target < classes
    x, y = digits.data[pick].astype(np.float32), digits.target[pick]
    result = run_probe(x, y, class_names=tuple(map(str, range(classes))), epochs=3)
    paths = write_report(
        result, tmp_path, subject="pixels on digits", embeddings=x, labels=y, spec="s"
    )
    names = [p.name for p in paths]
    assert names == [
        "report.json",
        "learning_curve.png",
        "confusion_matrix.png",
        "embedding_map.png",
    ]
    for path in paths[1:]:
        with Image.open(path) as image:
            assert min(image.info["dpi"]) >= 100 and DPI >= 100
    with Image.open(tmp_path / "confusion_matrix.png") as image:
        side = image.size[1]
    assert side == pytest.approx(DPI * (3.5 + 0.45 * classes), abs=2)  # grows with classes


def test_report_without_embeddings_draws_no_map(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 20)
    x = rng.standard_normal((40, 4)).astype(np.float32) + labels[:, None]
    result = run_probe(x, labels, class_names=("a", "b"), epochs=3)
    paths = write_report(result, tmp_path)
    assert "embedding_map.png" not in [p.name for p in paths]
