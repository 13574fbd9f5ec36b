"""The loader (``adapters/_src/app/data/loader.py``): any number of decoding threads yields the batches ``workers=0`` makes, bit for bit, in order, with the same
skipped files; an unreadable file under ``--strict-images`` is the first one in dataset order;
the pool is gone when the loop stops early; ``--workers`` on the command line."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from adapters._src.app import cli, store
from adapters._src.app.data.datasets import load_dataset
from adapters._src.app.data.loader import LoaderStats, default_workers, iter_batches
from adapters._src.app.errors import DataError, UnreadableImageError
from adapters._src.preprocess import Preprocess

PRE = Preprocess(size=(12, 12))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two classes of 11 images each, of varying sizes and formats, and two unreadable files
    (one in each class, at different positions)."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for c, name in enumerate(("a", "b")):
        (root / name).mkdir()
        for i in range(11):
            arr = rng.integers(0, 255, size=(9 + i, 14 + c, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / name / f"{i:02d}.{'jpg' if i % 2 else 'png'}")
    (root / "a" / "03b.jpg").write_bytes(b"\xff\xd8 truncated")
    (root / "b" / "07b.png").write_bytes(b"not a png")
    return root


def _run(ds, **kwargs) -> tuple[list[tuple[torch.Tensor, np.ndarray]], list[str]]:
    stats = LoaderStats()
    batches = list(iter_batches(ds, PRE, 4, stats=stats, **kwargs))
    return batches, stats.skipped


@pytest.mark.parametrize("workers", [1, 3])
def test_any_number_of_workers_gives_the_batches_of_none(folder, workers):
    ds = load_dataset(str(folder))
    expected, skipped = _run(ds, workers=0)
    assert skipped == ["a/03b.jpg", "b/07b.png"] and len(expected) == 6
    found, found_skipped = _run(ds, workers=workers)
    assert found_skipped == skipped
    assert [idx.tolist() for _, idx in found] == [idx.tolist() for _, idx in expected]
    for (x, _), (y, _) in zip(found, expected, strict=True):
        assert x.dtype == y.dtype and torch.equal(x, y)


def test_strict_images_names_the_first_unreadable_file(folder):
    ds = load_dataset(str(folder))
    with pytest.raises(UnreadableImageError, match=r"03b\.jpg"):
        list(iter_batches(ds, PRE, 2, strict=True, workers=4))


def test_stopping_early_leaves_no_worker(folder):
    ds = load_dataset(str(folder))
    before = threading.active_count()
    threads = torch.get_num_threads()
    batches = iter_batches(ds, PRE, 2, workers=3)
    next(batches)
    assert threading.active_count() > before
    batches.close()
    assert threading.active_count() == before and torch.get_num_threads() == threads


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"workers": -1}, r"^--workers: expected an integer >= 0, got -1"),
     ({"workers": 1.5}, r"^--workers: expected an integer >= 0, got 1\.5"),
     ({"batch_size": 0}, r"^--batch-size: expected an integer >= 1, got 0")],
)  # fmt: skip
def test_bad_loader_arguments_are_named(folder, kwargs, match):
    with pytest.raises(DataError, match=match):
        next(iter_batches(load_dataset(str(folder)), PRE, **{"batch_size": 2, **kwargs}))


def test_cli_workers_do_not_change_the_embeddings(folder, tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text("source: module\nclass_path: torch.nn.Flatten\n")
    argv = ["embed", str(spec), "--data", str(folder), "--image-size", "12", "--batch-size", "3"]
    rows = {}
    for workers in ("0", "2", None):
        out = tmp_path / f"{workers}.safetensors"
        flag = [] if workers is None else ["--workers", workers]
        assert cli.main([*argv, *flag, "--device", "cpu", "--out", str(out)]) == 0
        text = capsys.readouterr().out
        n = default_workers() if workers is None else int(workers)
        assert f"; {n} decoding worker{'' if n == 1 else 's'})" in text
        emb = store.load_embeddings(out)
        rows[workers] = (list(emb.ids), np.asarray(emb.embeddings))
    for workers in ("2", None):
        assert rows[workers][0] == rows["0"][0]
        np.testing.assert_array_equal(rows[workers][1], rows["0"][1])


def test_cli_refuses_bad_workers(folder, tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text("source: module\nclass_path: torch.nn.Flatten\n")
    argv = ["embed", str(spec), "--data", str(folder), "--out", str(tmp_path / "e.safetensors")]
    with pytest.raises(SystemExit) as exit_:
        cli.main([*argv, "--workers", "-2"])
    assert exit_.value.code == 2 and "--workers: expected an integer >= 0, got -2" in (
        capsys.readouterr().err
    )
    assert cli.main([*argv, "--workers", "2", "--engine", "ray"]) == 2
    assert "--workers: the process engine's decoding threads" in capsys.readouterr().err
