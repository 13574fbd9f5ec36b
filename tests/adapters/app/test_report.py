"""`probe --report` plots: the files, their resolution, a confusion matrix sized to the classes,
and a PCA map of the embeddings."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from adapters._src.app.probing import run_probe
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


def _result(epochs: int = 12):
    digits = load_digits()
    x, y = digits.data.astype(np.float32), digits.target
    return run_probe(x, y, class_names=tuple(map(str, range(10))), epochs=epochs), x, y


def test_report_json_names_the_best_epoch_as_printed(tmp_path):
    import json

    from adapters._src.app.probing import format_table

    result, _, _ = _result()
    write_report(result, tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    printed = int(re.search(r"best epoch (\d+) on val", format_table(result))[1])
    assert report["best_epoch"] == printed
    val = report["history"]["val_accuracy"]
    assert val[printed - 1] == max(val)  # epochs count from 1


class Interrupted(KeyboardInterrupt):
    pass


def _interrupt_the_last_plot(monkeypatch):
    """Ctrl-C while the report is written: the last plot raises as an interrupt would."""
    from adapters._src.app import report

    def interrupted(*args, **kwargs):
        raise Interrupted

    monkeypatch.setattr(report, "_embedding_map", interrupted)


def test_an_interrupted_report_leaves_no_directory(tmp_path, monkeypatch):
    result, x, y = _result(3)
    _interrupt_the_last_plot(monkeypatch)
    out = tmp_path / "runs" / "report"
    with pytest.raises(Interrupted):
        write_report(result, out, embeddings=x, labels=y)
    assert list(tmp_path.iterdir()) == []  # no report, no parent made for it, no temp folder


def test_an_interrupted_report_keeps_the_old_one(tmp_path, monkeypatch):
    result, x, y = _result(3)
    write_report(result, tmp_path, embeddings=x, labels=y)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    (tmp_path / "notes.txt").write_text("mine")
    _interrupt_the_last_plot(monkeypatch)
    with pytest.raises(Interrupted):
        write_report(_result(5)[0], tmp_path, embeddings=x, labels=y)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == {**before, "notes.txt": b"mine"}


def test_a_new_report_directory_gets_the_usual_mode(tmp_path):
    from specs._src.atomic import current_umask

    write_report(_result(3)[0], tmp_path / "r")
    assert (tmp_path / "r").stat().st_mode & 0o777 == 0o777 & ~current_umask()
