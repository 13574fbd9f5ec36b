"""No input is ever overwritten: ``--out`` that is (or links to) an input, or lies in a
directory that cannot be written, is refused before the backbone is built."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from adapters._src.app import cli, store
from adapters._src.app.embeddings import Embeddings
from adapters._src.app.errors import EmbedError
from adapters._src.app.out_paths import check_output_path

#: a spec that fails to build: an error naming --out proves the check ran before the build
UNBUILDABLE = {"source": "module", "class_path": "no_such_package.Model"}


@pytest.fixture
def job(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    np.save(tmp_path / "images.npy", rng.integers(0, 255, (4, 8, 8), dtype=np.uint8))
    np.save(tmp_path / "labels.npy", np.arange(4))
    (tmp_path / "weights.safetensors").write_bytes(b"not really weights")
    spec = {**UNBUILDABLE, "checkpoint_path": str(tmp_path / "weights.safetensors")}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    (tmp_path / "model.onnx").write_bytes(b"not really a model")
    folder = tmp_path / "folder" / "cls"
    folder.mkdir(parents=True)
    (folder / "a.png").write_bytes(b"an image")
    (tmp_path / "out").mkdir()
    return {"root": tmp_path, "images": tmp_path / "images.npy", "folder": tmp_path / "folder"}


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() and not p.is_symlink() else b""
        for p in root.rglob("*")
    }


def _refused(capsys, root: Path, argv: list[str], match: str) -> None:
    before = _snapshot(root)
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --out: "), err
    assert re.search(match, lines[0]), lines[0]
    assert _snapshot(root) == before  # nothing written, every input byte for byte


def _link(kind: str, target: Path, link: Path) -> Path:
    if kind == "symlink":
        link.symlink_to(target)
    elif kind == "hardlink":
        os.link(target, link)
    else:
        return target
    return link


@pytest.mark.parametrize("kind", ["same", "symlink", "hardlink"])
def test_out_is_the_data_file(capsys, job, kind):
    root = job["root"]
    out = _link(kind, job["images"], root / "out" / "e.safetensors")
    argv = ["embed", str(root / "spec.yaml"), "--data", str(job["images"]), "--out", str(out)]
    _refused(capsys, root, argv, r"input --data .*images\.npy")


@pytest.mark.parametrize(
    ("name", "flag"),
    [
        ("labels.npy", "--labels"),
        ("spec.yaml", "SPEC"),
        ("weights.safetensors", "SPEC checkpoint_path"),
    ],
)
@pytest.mark.parametrize("kind", ["same", "symlink", "hardlink"])
def test_out_is_another_input(capsys, job, name, flag, kind):
    root = job["root"]
    out = _link(kind, root / name, root / "out" / "e.safetensors")
    argv = ["embed", str(root / "spec.yaml"), "--data", str(job["images"])]
    argv += ["--labels", str(root / "labels.npy"), "--out", str(out)]
    _refused(capsys, root, argv, f"input {flag} ")


def test_out_is_the_onnx_model(capsys, job):
    root = job["root"]
    argv = ["embed", str(root / "model.onnx"), "--data", str(job["images"])]
    _refused(capsys, root, [*argv, "--out", str(root / "model.onnx")], r"input SPEC .*model\.onnx")


@pytest.mark.parametrize("kind", ["same", "symlink", "hardlink"])
def test_out_is_an_image_of_the_data_folder(capsys, job, kind):
    root = job["root"]
    out = _link(kind, job["folder"] / "cls" / "a.png", root / "out" / "e.safetensors")
    argv = ["embed", str(root / "spec.yaml"), "--data", str(job["folder"]), "--out", str(out)]
    _refused(capsys, root, argv, r"input --data .*folder")


def _unwritable_dir(tmp_path: Path) -> Path:
    """A directory this process cannot create files in (root ignores mode bits: use /sys)."""
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        return ro
    try:
        with tempfile.TemporaryFile(dir="/sys"):
            pass
    except OSError:
        return Path("/sys")
    pytest.skip("no directory here refuses writes to this user")


def test_out_in_an_unwritable_directory(capsys, job):
    root = job["root"]
    out = _unwritable_dir(root) / "e.safetensors"
    argv = ["embed", str(root / "spec.yaml"), "--data", str(job["images"]), "--out", str(out)]
    _refused(capsys, root, argv, r"cannot write in the directory .* choose a writable")


def test_library_names_its_own_arguments(job):
    data = job["images"]
    with pytest.raises(EmbedError, match=r"^out: .* the input data .*images\.npy"):
        check_output_path(data, inputs={"data": str(data)})
    emb = Embeddings(
        np.zeros((1, 2), np.float32),
        np.zeros(1, np.int64),
        np.zeros(1, np.int64),
        {"data": str(data)},
    )
    before = data.read_bytes()
    with pytest.raises(EmbedError, match=r"^out: .* input data"):
        store.save_embeddings(emb, data)
    assert data.read_bytes() == before
    # a fresh file, a name that is not a path, or a missing input is no conflict
    fresh = job["root"] / "out" / "new.safetensors"
    assert check_output_path(fresh, inputs={"data": "digits", "spec": None}) == fresh
