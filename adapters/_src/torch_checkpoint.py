"""Torch checkpoint files, loaded with ``torch.load(weights_only=True)``: memory-mapped only when
the archive is what mapping assumes, read whole only within a bound, refused otherwise.

``torch.load(mmap=True)`` maps the file and slices each storage at its zip record's offset, for
as many bytes as the pickle claims. That is right only when every record is stored (not
compressed) and holds exactly the bytes claimed; a deflated archive (re-zipped by a tool) maps
compressed bytes as weights, and a storage claiming more than its record reads past it. So a
zip-format file is checked first (`inspect`: the zip directory, then the pickle run on ``meta``
storages to collect each storage's claimed size, nothing read from the records):

- every record stored and sized as claimed: memory-mapped (the normal case; peak memory stays
  about the file);
- some record compressed: loaded whole, without mmap, if everything inflates to at most
  `INFLATION_RATIO` times the file or `INFLATION_FLOOR` bytes, whichever is larger; refused
  beyond (a small file claiming gigabytes);
- a record missing, sized otherwise than claimed, or a zip directory that is missing or points
  past the end: refused as truncated or corrupt.

Legacy (pre-zip) torch files and bytes read from a remote URL are loaded without mmap.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from typing import Any

import torch

from .errors import BuildError

#: a compressed archive may inflate to this multiple of its own size ...
INFLATION_RATIO = 10
#: ... or to this many bytes, whichever is larger (tiny files of zeros compress very well)
INFLATION_FLOOR = 64 << 20
#: how many blocked globals a refused pickle's error names
SHOWN_GLOBALS = 5
#: the first bytes of a zip archive (what ``torch.load`` itself checks)
ZIP_MAGIC = b"PK\x03\x04"


class Corrupt(Exception):
    """What makes an archive unreadable as a checkpoint (the sentence after "corrupt: ")."""


def load(source: str | bytes, path: str, field: str) -> Any:
    """``torch.load(weights_only=True)`` of a local file (``source`` its path) or of bytes.

    Raises:
        BuildError: naming ``field``: a pickle ``weights_only`` refuses, a truncated or corrupt
            file, a compressed archive inflating past the bound, or anything else torch.load
            cannot read.
    """
    handle: Any = io.BytesIO(source) if isinstance(source, bytes) else source
    size = len(source) if isinstance(source, bytes) else os.path.getsize(source)
    mmap = False
    if size == 0:
        raise corrupt(path, field, "it is empty")
    if _head(handle) == ZIP_MAGIC:
        try:
            stored = inspect(handle, size)
        except Corrupt as err:
            raise corrupt(path, field, str(err)) from None
        except pickle.UnpicklingError as err:
            raise _refused_pickle(handle, path, field, err) from None
        if stored is None:
            raise _inflates(path, field, size)
        mmap = stored and isinstance(source, str)
    if isinstance(handle, io.BytesIO):
        handle.seek(0)
    try:
        return torch.load(handle, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        # torch's own text suggests weights_only=False, i.e. running the file's code: not passed on
        raise _refused_pickle(handle, path, field, err) from None
    except Exception as err:
        raise _unloadable(path, field, err) from err


def _head(handle: Any) -> bytes:
    if isinstance(handle, io.BytesIO):
        return handle.getvalue()[: len(ZIP_MAGIC)]
    with open(handle, "rb") as f:
        return f.read(len(ZIP_MAGIC))


def inspect(handle: Any, size: int) -> bool | None:
    """Whether a ``torch.save`` zip archive of ``size`` bytes can be memory-mapped.

    Returns:
        True: every record is stored and every storage's record holds the bytes the pickle
        claims. False: some record is compressed, and all of them inflate within the bound.
        None: some record is compressed and they inflate past the bound.

    Raises:
        Corrupt: the zip directory is unreadable or points past the end, the pickle cannot be
            read, or a storage's record is missing or sized otherwise than claimed.
        pickle.UnpicklingError: the pickle holds objects ``weights_only`` refuses.
    """
    if isinstance(handle, io.BytesIO):
        handle.seek(0)
    try:
        with zipfile.ZipFile(handle) as archive:
            infos = archive.infolist()
            compressed = _check_directory(infos, size)
            if compressed and sum(i.file_size for i in infos) > inflation_limit(size):
                return None
            prefix = infos[0].filename.split("/", 1)[0]
            records = {i.filename: i.file_size for i in infos}
            if f"{prefix}/data.pkl" not in records:
                raise Corrupt("it has no data.pkl, so it is not a torch.save archive")
            data = archive.read(f"{prefix}/data.pkl")
    except Corrupt:
        raise
    except zipfile.BadZipFile as err:  # usually "File is not a zip file": the end is missing
        raise Corrupt(f"its zip directory (at the end) is missing or unreadable: {err}") from None
    except Exception as err:  # encrypted, an unknown compression, a bad CRC, a short read, ...
        raise Corrupt(f"its zip archive cannot be read ({type(err).__name__}: {err})") from None
    for key, claimed in storage_claims(data).items():
        held = records.get(f"{prefix}/data/{key}")
        if held is None:
            raise Corrupt(f"storage {key!r} has no record in the archive")
        if held != claimed:
            raise Corrupt(f"storage {key!r} claims {claimed} bytes but its record holds {held}")
    return not compressed


def _check_directory(infos: list[zipfile.ZipInfo], size: int) -> bool:
    """Whether any record is compressed; `Corrupt` if the directory does not fit the file."""
    if not infos:
        raise Corrupt("its zip archive is empty")
    for info in infos:
        # 30: the fixed part of the record's local header, which precedes its name and data
        if info.header_offset + 30 + len(info.filename.encode()) + info.compress_size > size:
            raise Corrupt(f"record {info.filename!r} ends past the end of the file")
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise Corrupt(f"stored record {info.filename!r} has two different sizes")
    return any(i.compress_type != zipfile.ZIP_STORED for i in infos)


def inflation_limit(size: int) -> int:
    """The most bytes a compressed archive of ``size`` bytes may inflate to."""
    return max(INFLATION_RATIO * size, INFLATION_FLOOR)


def storage_claims(data: bytes) -> dict[str, int]:
    """``{storage key: bytes claimed}`` of a torch.save pickle, run with ``weights_only``'s
    unpickler on ``meta`` storages (no storage is read).

    Raises:
        Corrupt: the pickle cannot be read, or names one storage with two sizes.
        pickle.UnpicklingError: it holds objects ``weights_only`` refuses.
    """
    # torch's own weights_only unpickler (as torch.load uses): its persistent_load is the only
    # place the claimed sizes appear, and torch.load offers no hook to see them
    from torch import _weights_only_unpickler

    claims: dict[str, int] = {}

    def persistent_load(pid: Any) -> Any:
        _, storage_type, key, _, numel = pid
        dtype = torch.uint8 if storage_type is torch.UntypedStorage else storage_type.dtype
        if not (isinstance(key, str) and isinstance(numel, int) and numel >= 0):
            raise Corrupt(f"a malformed storage reference {pid!r}")
        nbytes = numel * dtype.itemsize
        if claims.setdefault(key, nbytes) != nbytes:
            raise Corrupt(f"storage {key!r} is claimed with two different sizes")
        meta = torch.UntypedStorage(nbytes, device="meta")
        return torch.storage.TypedStorage(wrap_storage=meta, dtype=dtype, _internal=True)

    unpickler = _weights_only_unpickler.Unpickler(io.BytesIO(data), encoding="utf-8")
    unpickler.persistent_load = persistent_load
    try:
        unpickler.load()
    except (Corrupt, pickle.UnpicklingError):
        raise
    except Exception as err:  # a broken pickle fails anywhere: EOF, struct, unpacking, torch
        raise Corrupt(f"its pickle cannot be read ({type(err).__name__}: {err})") from None
    return claims


def corrupt(path: str, field: str, why: str) -> BuildError:
    """The error for a checkpoint that is truncated or corrupt, saying ``why``."""
    return BuildError(
        field,
        f"checkpoint {path!r} is truncated or corrupt: {why}; nothing was loaded",
        fix="Copy or download the file again (and compare its sha256 with the published "
        "one), or re-save it with torch.save",
    )


def _inflates(path: str, field: str, size: int) -> BuildError:
    return BuildError(
        field,
        f"checkpoint {path!r} is a compressed archive of {size} bytes whose records inflate "
        f"to more than {inflation_limit(size)} bytes ({INFLATION_RATIO} times the file, at "
        f"least {INFLATION_FLOOR >> 20} MiB); nothing was loaded",
        fix="Re-save the weights uncompressed with torch.save (which also lets them be "
        "memory-mapped), or as a .safetensors file",
    )


def _refused_pickle(handle: Any, path: str, field: str, err: pickle.UnpicklingError) -> BuildError:
    """The error for a torch file ``weights_only`` refused: its blocked globals when it names
    any, else torch's reason (without its advice to load with ``weights_only=False``)."""
    blocked: list[str] = []
    if isinstance(handle, io.BytesIO):
        handle.seek(0)
    if zipfile.is_zipfile(handle):
        if isinstance(handle, io.BytesIO):
            handle.seek(0)
        try:
            blocked = torch.serialization.get_unsafe_globals_in_checkpoint(handle)
        except Exception:  # a pickle too broken to list: torch's own reason is shown
            blocked = []
    if not blocked:
        return _unloadable(path, field, err)
    return BuildError(
        field,
        f"checkpoint {path!r} was not loaded: it pickles {len(blocked)} Python object type(s) "
        f"that are not plain tensors and could run code when loaded: "
        f"{', '.join(blocked[:SHOWN_GLOBALS])}",
        fix="Re-save only the tensors (torch.save(model.state_dict(), path)) or save a "
        ".safetensors file; pickled objects are never loaded, since unpickling can run code",
    )


def _unloadable(path: str, field: str, err: BaseException) -> BuildError:
    return BuildError(
        field,
        f"cannot load {path!r} with torch.load(weights_only=True) ({_reason(err)})",
        fix="Check that the file is a complete checkpoint (not truncated or corrupt) of plain "
        "tensors (torch.save(model.state_dict(), path)) or a .safetensors file; pickled "
        "objects are refused for safety",
    )


def _reason(err: BaseException) -> str:
    """The useful part of torch.load's long (and unsafe-advice-giving) error text."""
    text = str(err)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__
