"""The one atomic-write helper: modes follow the umask, errors leave nothing behind."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import specs
from specs._src.atomic import atomic_write, current_umask, file_mode

SPEC = specs.TimmSpec("vit_tiny_patch16_224", pretrained=False)


@pytest.fixture
def umask() -> Iterator[Callable[[int], int]]:
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_new_file_mode_follows_the_umask(tmp_path: Path, umask, mask: int) -> None:
    umask(mask)
    assert current_umask() == mask
    with atomic_write(tmp_path / "a.bin") as staged:
        staged.write_bytes(b"data")
    specs.dump(SPEC, tmp_path / "b.yaml")
    reference = tmp_path / "plain.txt"
    with open(reference, "w") as f:  # what a normal open gives
        f.write("x")
    want = reference.stat().st_mode & 0o777
    assert want == 0o666 & ~mask
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == want
    assert (tmp_path / "b.yaml").stat().st_mode & 0o777 == want


def test_existing_file_keeps_its_mode(tmp_path: Path, umask) -> None:
    umask(0o077)
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")
    os.chmod(path, 0o664)
    with atomic_write(path) as staged:
        staged.write_bytes(b"new")
    assert path.read_bytes() == b"new"
    assert path.stat().st_mode & 0o777 == 0o664 == file_mode(path)


def test_error_mid_write_keeps_old_content_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"old content")
    with pytest.raises(RuntimeError, match="disk on fire"), atomic_write(path) as staged:
        staged.write_bytes(b"half")
        (staged.parent / "a.bin.data").write_bytes(b"side")
        raise RuntimeError("disk on fire")
    assert path.read_bytes() == b"old content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_side_files_land_beside_dest(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    with atomic_write(path) as staged:
        staged.write_bytes(b"model")
        (staged.parent / "model.onnx.data").write_bytes(b"weights")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model.onnx.data"]
    assert (tmp_path / "model.onnx.data").read_bytes() == b"weights"


def test_missing_directory_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), atomic_write(tmp_path / "missing" / "a.bin") as s:
        s.write_bytes(b"x")
    assert list(tmp_path.iterdir()) == []
