"""Every writer goes through the one atomic-write helper: modes follow the umask like a plain
``open``, and nothing is left half-written."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

import specs
from adapters._src.app.embeddings import Embeddings
from adapters._src.app.probing import run_probe
from adapters._src.app.report import write_report
from adapters._src.app.store import load_embeddings, save_embeddings
from adapters._src.runtimes.onnxruntime.export import export_onnx
from adapters._src.runtimes.onnxruntime.serve import serve_with_onnxruntime
from adapters._src.torch_module import torch_adapter

MASKS = [0o002, 0o077]


@pytest.fixture
def umask() -> Iterator[Callable[[int], int]]:
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


def _files(root: Path) -> dict[str, int]:
    """Every file under ``root`` (hidden temporaries included) -> its permission bits."""
    return {
        str(p.relative_to(root)): p.stat().st_mode & 0o777 for p in root.rglob("*") if p.is_file()
    }


def _emb() -> Embeddings:
    rng = np.random.default_rng(0)
    return Embeddings(
        rng.standard_normal((6, 4)).astype(np.float32),
        np.array([0, 1, 0, 1, 0, 1]),
        np.arange(6),
        {"format": "fm-adapters/embeddings/v1"},
    )


@pytest.mark.parametrize("mask", MASKS)
def test_embeddings_mode_follows_umask(tmp_path: Path, umask, mask: int) -> None:
    umask(mask)
    save_embeddings(_emb(), tmp_path / "e.safetensors")
    assert _files(tmp_path) == {"e.safetensors": 0o666 & ~mask}
    np.testing.assert_array_equal(load_embeddings(tmp_path / "e.safetensors").ids, np.arange(6))


def test_embeddings_failed_write_keeps_old_file(tmp_path: Path) -> None:
    out = tmp_path / "e.safetensors"
    save_embeddings(_emb(), out)
    before = out.read_bytes()
    bad = Embeddings(_emb().embeddings, _emb().labels, _emb().ids, {"format": 3})  # not a str
    with pytest.raises(Exception, match="str"):
        save_embeddings(bad, out)
    assert out.read_bytes() == before
    assert list(_files(tmp_path)) == ["e.safetensors"]


@pytest.mark.parametrize("mask", MASKS)
def test_report_files_mode_follows_umask(tmp_path: Path, umask, mask: int) -> None:
    umask(mask)
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 20)
    x = rng.standard_normal((40, 4)).astype(np.float32) + labels[:, None]
    result = run_probe(x, labels, class_names=("a", "b"), epochs=3)
    paths = write_report(result, tmp_path / "r", spec="s")
    assert {p.name for p in paths} == set(_files(tmp_path / "r"))
    assert set(_files(tmp_path / "r").values()) == {0o666 & ~mask}
    assert json.loads((tmp_path / "r" / "report.json").read_text())["spec"] == "s"


@pytest.mark.parametrize("mask", MASKS)
def test_onnx_export_and_cache_modes_follow_umask(tmp_path: Path, umask, mask: int) -> None:
    umask(mask)
    torch.manual_seed(0)
    adapter = torch_adapter(torch.nn.Linear(4, 3), specs.ModuleSpec("torch.nn.Linear"))
    export_onnx(adapter, tmp_path / "m.onnx", torch.randn(2, 4))
    serve_with_onnxruntime(adapter, torch.randn(2, 4), cache_dir=tmp_path / "cache")
    files = _files(tmp_path)
    assert "m.onnx" in files and len(files) == 3, files  # the export, the cache's model + meta
    assert set(files.values()) == {0o666 & ~mask}
