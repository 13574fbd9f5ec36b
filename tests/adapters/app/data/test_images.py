"""Decompression-bomb images are unreadable images: skipped and reported, or named under
``--strict-images``; never a traceback."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adapters._src.app import cli
from adapters._src.app.data.datasets import load_dataset
from adapters._src.app.data.loader import LoaderStats, iter_batches
from adapters._src.app.errors import UnreadableImageError
from adapters._src.preprocess import Preprocess

SIDE = 40  # the bomb: 40 x 40 = 1600 pixels, over the lowered limits below


@pytest.fixture
def bomb_folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    (tmp_path / "a").mkdir()
    Image.fromarray(rng.integers(0, 255, (SIDE, SIDE, 3), dtype=np.uint8)).save(
        tmp_path / "a" / "bomb.png"
    )
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(
            tmp_path / "a" / f"ok{i}.png"
        )
    return tmp_path


#: PIL raises DecompressionBombError over twice the limit, and only warns between 1x and 2x
LIMITS = {"error": 700, "warning": 1000}


@pytest.mark.parametrize("form", list(LIMITS))
@pytest.mark.parametrize("warnings_as", ["error", "record"])
def test_bomb_is_skipped_and_reported(bomb_folder, monkeypatch, form, warnings_as):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", LIMITS[form])
    ds = load_dataset(str(bomb_folder))
    pre = Preprocess(size=(8, 8))
    stats = LoaderStats()
    with warnings.catch_warnings(record=warnings_as == "record"):
        if warnings_as == "error":
            warnings.simplefilter("error")
        idx = np.concatenate([b[1] for b in iter_batches(ds, pre, 4, stats=stats)])
    assert stats.skipped == ["a/bomb.png"]
    assert sorted(ds.ids[i] for i in idx) == ["a/ok0.png", "a/ok1.png"]


@pytest.mark.parametrize("form", list(LIMITS))
def test_bomb_is_named_under_strict_images(bomb_folder, monkeypatch, form):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", LIMITS[form])
    ds = load_dataset(str(bomb_folder))
    with pytest.raises(UnreadableImageError, match=r"bomb\.png.*decompression.bomb"):
        with warnings.catch_warnings(record=True):
            list(iter_batches(ds, Preprocess(size=(8, 8)), 4, strict=True))


def test_cli_strict_images_bomb_one_line(bomb_folder, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", LIMITS["error"])
    spec = tmp_path / "spec.yaml"
    spec.write_text("source: module\nclass_path: torch.nn.Flatten\n")
    out = tmp_path / "e.safetensors"
    argv = ["embed", str(spec), "--data", str(bomb_folder), "--image-size", "8"]
    code = cli.main([*argv, "--strict-images", "--device", "cpu", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "bomb.png" in err[0] and "--strict-images" in err[0]
    assert not out.exists()
