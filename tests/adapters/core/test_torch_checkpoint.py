"""Torch checkpoint archives: memory-mapped when every record is stored and sized as its pickle
claims; a compressed archive loads the same weights without mmap (bounded); truncated or
corrupt archives, and small files claiming gigabytes, are refused naming the file."""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import timm
import torch

import adapters
import specs
from adapters._src import torch_checkpoint
from adapters._src.checkpoint import read_state_dict

#: float32 elements of the crafted storage: 1 MiB, written as a 4-byte int in the pickle
NUMEL = 1 << 18
#: what the crafted pickle claims instead: 2 GiB of float32
CLAIMED = 1 << 29


def rezip(
    src: Path,
    dst: Path,
    compression: int = zipfile.ZIP_DEFLATED,
    edit: Callable[[str, bytes], bytes] | None = None,
) -> Path:
    """A copy of the archive ``src`` with every record written with ``compression`` (as a zip
    tool re-packing it would); ``edit(name, data)`` changes records on the way."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            zout.writestr(info.filename, edit(info.filename, data) if edit else data)
    return dst


def claim_2gib(name: str, data: bytes) -> bytes:
    """data.pkl edited so that the storage of NUMEL floats (and its tensor) claim CLAIMED."""
    if not name.endswith("/data.pkl"):
        return data
    old, new = (b"J" + struct.pack("<i", n) for n in (NUMEL, CLAIMED))
    assert data.count(old) == 2  # the storage's numel and the tensor's size
    return data.replace(old, new)


def set_directory_size(path: Path, name: str, size: int) -> None:
    """Make the zip's central directory say that record ``name`` inflates to ``size`` bytes."""
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at != -1:
        length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + length] == name.encode():
            struct.pack_into("<I", data, at + 24, size)
            path.write_bytes(bytes(data))
            return
        at = data.find(b"PK\x01\x02", at + 4)
    raise AssertionError(f"no record {name}")


def linear_spec(path: Path) -> specs.ModuleSpec:
    return specs.ModuleSpec(
        class_path="torch.nn.Linear",
        init_args={"in_features": 6, "out_features": 3},
        checkpoint_path=str(path),
    )


def timm_spec(path: Path) -> specs.TimmSpec:
    return specs.TimmSpec(
        "resnet10t", pretrained=True, checkpoint_path=str(path), model_kwargs={"num_classes": 0}
    )


SOURCES = {
    "module": (lambda: torch.nn.Linear(6, 3), linear_spec, (4, 6)),
    "timm": (lambda: timm.create_model("resnet10t", num_classes=0), timm_spec, (2, 3, 64, 64)),
}


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_deflated_checkpoint_builds_the_same_model(tmp_path, source) -> None:
    make, spec_of, shape = SOURCES[source]
    torch.manual_seed(0)
    plain = tmp_path / "plain.pth"
    torch.save(make().state_dict(), plain)
    deflated = rezip(plain, tmp_path / "deflated.pth")
    with zipfile.ZipFile(deflated) as archive:
        assert any(i.compress_type == zipfile.ZIP_DEFLATED for i in archive.infolist())
    x = torch.randn(*shape)
    want = adapters.build(spec_of(plain))
    got = adapters.build(spec_of(deflated))
    for key, value in want.params.items():
        torch.testing.assert_close(got.params[key], value, rtol=0, atol=0)
    torch.testing.assert_close(got(x), want(x))


def _mapped_ranges(path: Path) -> list[tuple[int, int]]:
    target = str(path.resolve())
    ranges = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and parts[5] == target:
            start, end = (int(x, 16) for x in parts[0].split("-"))
            ranges.append((start, end))
    return ranges


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc/self/maps")
def test_a_model_saved_by_torch_save_is_still_memory_mapped(tmp_path) -> None:
    state = timm.create_model("resnet10t", num_classes=0).state_dict()
    path = tmp_path / "resnet.pth"
    torch.save(state, path)
    loaded = read_state_dict(str(path))
    ranges = _mapped_ranges(path)
    assert ranges, "the checkpoint file is not memory-mapped"
    for key, tensor in loaded.items():
        if tensor.numel():
            assert any(lo <= tensor.data_ptr() < hi for lo, hi in ranges), key
        torch.testing.assert_close(tensor, state[key], rtol=0, atol=0)
    deflated = rezip(path, tmp_path / "deflated.pth")
    assert not _mapped_ranges(deflated)  # read whole: nothing of it stays mapped
    for key, tensor in read_state_dict(str(deflated)).items():
        torch.testing.assert_close(tensor, state[key], rtol=0, atol=0)


def _crafted(tmp_path: Path, compression: int) -> Path:
    """A torch.save archive of 1 MiB of floats whose pickle claims 2 GiB of them."""
    plain = tmp_path / "small.pth"
    torch.save({"weight": torch.zeros(NUMEL)}, plain)
    return rezip(plain, tmp_path / "claims.pth", compression, claim_2gib)


def test_small_stored_archive_claiming_2gib_is_refused_as_corrupt(tmp_path) -> None:
    path = _crafted(tmp_path, zipfile.ZIP_STORED)
    with pytest.raises(adapters.BuildError) as info:
        read_state_dict(str(path))
    message = str(info.value)
    assert message.startswith(f"checkpoint_path: checkpoint {str(path)!r} is truncated or corrupt")
    assert f"claims {CLAIMED * 4} bytes but its record holds {NUMEL * 4}" in message


def test_small_deflated_archive_inflating_to_2gib_is_refused(tmp_path) -> None:
    path = _crafted(tmp_path, zipfile.ZIP_DEFLATED)
    set_directory_size(path, "small/data/0", CLAIMED * 4)
    size = path.stat().st_size
    assert size < (1 << 20) and CLAIMED * 4 > torch_checkpoint.inflation_limit(size)
    with pytest.raises(adapters.BuildError) as info:
        read_state_dict(str(path))
    message = str(info.value)
    assert message.startswith(f"checkpoint_path: checkpoint {str(path)!r} is a compressed archive")
    assert "inflate to more than" in message
    assert "Re-save the weights uncompressed" in message


def test_storage_record_cut_short_is_refused_in_a_build(tmp_path) -> None:
    plain = tmp_path / "linear.pth"
    torch.save(torch.nn.Linear(6, 3).state_dict(), plain)

    def cut(name: str, data: bytes) -> bytes:
        return data[:40] if len(data) == 72 else data  # the 3x6 float weight: 72 bytes

    path = rezip(plain, tmp_path / "cut.pth", zipfile.ZIP_STORED, cut)
    with pytest.raises(
        adapters.BuildError,
        match=r"^checkpoint_path: checkpoint .* is truncated or corrupt: storage '\d+' claims "
        r"72 bytes but its record holds 40; nothing was loaded",
    ):
        adapters.build(linear_spec(path))


@pytest.mark.parametrize("keep", [0.05, 0.5, 0.99])
def test_truncated_torch_file_says_truncated(tmp_path, keep) -> None:
    plain = tmp_path / "full.pth"
    torch.save(timm.create_model("resnet10t", num_classes=0).state_dict(), plain)
    data = plain.read_bytes()
    path = tmp_path / "truncated.pth"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(adapters.BuildError) as info:
        adapters.build(timm_spec(path))
    message = str(info.value)
    assert message.startswith(f"checkpoint_path: checkpoint {str(path)!r} is truncated or corrupt")
    assert "Errno" not in message


def test_empty_torch_file_says_so(tmp_path) -> None:
    path = tmp_path / "empty.pth"
    path.write_bytes(b"")
    with pytest.raises(adapters.BuildError, match=r"is truncated or corrupt: it is empty"):
        adapters.build(linear_spec(path))
