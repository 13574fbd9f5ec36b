"""Atomic file writes: the one helper every writer of the project goes through.

`atomic_write(dest)` yields a path named like ``dest`` inside a private directory beside it.
The caller writes there (one file, or a model plus side files such as ONNX external
weights); on success every file is flushed to disk, given the mode a plain ``open`` would
give it, and renamed into ``dest``'s directory (side files first, ``dest`` last); on any
error (or a crash) the private directory is removed and ``dest`` keeps its old content.

It lives in `specs` (plain Python, no torch or jax) so that `specs.dump` can use it;
`adapters` imports it from here.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def file_mode(dest: str | os.PathLike[str]) -> int:
    """The permission bits ``open(dest, "w")`` would leave: an existing file keeps its own,
    a new one gets ``0o666`` less the process umask."""
    try:
        return os.stat(dest).st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~current_umask()


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux's
    ``/proc/self/status``); elsewhere set and restored at once."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass  # no procfs (macOS, Windows): fall through
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Write ``dest`` (and any side files next to it) all at once or not at all.

    Args:
        dest: the file to write; its directory must exist.

    Yields:
        A path with ``dest``'s file name in a private directory beside ``dest``: write the file
        there, plus any side files it references by name (they land beside ``dest`` too).

    Raises:
        FileNotFoundError: ``dest``'s directory does not exist.
        PermissionError: ``dest``'s directory is not writable.
        Whatever the caller's writing raises (then nothing is written and nothing is left).

    Example:
        >>> with atomic_write("report.json") as tmp:
        ...     tmp.write_text(text)
    """
    dest = Path(dest)
    parent = dest.parent if str(dest.parent) else Path(".")
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=parent))
    try:
        yield work / dest.name
        staged = sorted(work.iterdir(), key=lambda p: p.name == dest.name)  # dest last
        for item in staged:
            if item.is_file():
                _sync(item)
                os.chmod(item, file_mode(parent / item.name))
        for item in staged:
            os.replace(item, parent / item.name)
        _sync_dir(parent)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_dir(path: Path) -> None:
    """Make the renames durable; some file systems cannot fsync a directory (EINVAL)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # the rename itself has happened; durability is best effort here
    finally:
        os.close(fd)


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """The hex sha256 of a file, read in ``chunk``-byte pieces (memory stays flat): what the
    caches and shard manifests record beside the files they write, and check when reading."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()
