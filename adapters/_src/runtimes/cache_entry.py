"""A runtime cache entry, shared by the ONNX Runtime and JAX runtime caches.

An entry is a directory named after its key holding the runtime's files and a ``meta.json``
that records the full key, the digest of the weights it was built from (``weights``) and the
sha256 of every other file (``files``). It is trusted for what it records, never for where it
lies: `load` compares the recorded key and weights digest with the ones asked for and every
file with its sha256, and an entry that fails (copied over another, edited, cut short, ...) is
a miss with a `CacheWarning` naming it, and removed so that it is rebuilt.

An entry is built in a private directory beside it (`staging`) and published by renaming that
directory into place (`publish`): a reader never sees half an entry, concurrent builders of
one entry never touch each other's files, and a builder that loses the race discards its copy
and takes the winner's once `load` has checked it.

An unusable cache location (a file, a dangling link, a read-only directory) is a
`CacheWarning` naming where it came from (``$FM_ADAPTERS_CACHE``, the ``cache_dir``
argument, the default), and the build goes on without the cache (`staging` yields None).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from specs.internal import atomic_write, sha256_file

CACHE_ENV = "FM_ADAPTERS_CACHE"
META_FILE = "meta.json"
#: how many times `publish` takes another turn when the entry in its way is not usable
PUBLISH_TRIES = 3


class CacheWarning(UserWarning):
    """A runtime cache entry was not used (corrupt, or not this build's), or the cache
    location cannot be written; the build goes on."""


def cache_root() -> Path:
    """The runtime caches' root: ``$FM_ADAPTERS_CACHE`` when that is set, else the XDG cache
    directory's ``fm-adapters`` (``$XDG_CACHE_HOME``, or ``~/.cache`` when it is unset, empty or
    relative, as the XDG base directory spec says). Not created."""
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "fm-adapters"


def root_source(cache_dir: Any) -> str:
    """Where a cache directory came from, as a warning names it (and how to fix it)."""
    if cache_dir is not None:
        return "the cache_dir argument; pass a writable directory"
    if os.environ.get(CACHE_ENV):
        value = os.environ[CACHE_ENV]
        return f"${CACHE_ENV}={value!r}; point it at a writable directory, or unset it"
    return f"the default cache location; set ${CACHE_ENV} to a writable directory"


def read_meta(entry: Path, what: str) -> dict[str, Any] | None:
    """An entry's ``meta.json`` as a dict; None when there is none (then a directory in the
    entry's place is discarded, see `discard`), or when it cannot be read (discarded too)."""
    meta_path = entry / META_FILE
    if not meta_path.is_file():
        if os.path.lexists(entry):
            return discard(entry, f"it has no {META_FILE} (a build cut short)", what)
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        return None  # removed by a concurrent rebuild since the check above
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return discard(entry, f"its {META_FILE} cannot be read ({err})", what)
    if not isinstance(meta, dict):
        return discard(entry, f"its {META_FILE} is not a JSON object", what)
    return meta


def load(entry: Path, key: str, weights: str, what: str) -> dict[str, Any] | None:
    """The meta of an intact entry built for ``key`` from ``weights``; None when there is none.

    An entry that records another key or weights digest (copied or moved from another entry),
    or whose files do not match the sha256 it recorded (a disk error, an edit, a copy cut
    short), is discarded with a `CacheWarning` naming it, so that the caller builds it again.
    """
    meta = read_meta(entry, what)
    if meta is None:
        return None
    if meta.get("key") != key:
        recorded = str(meta.get("key"))[:16]
        why = f"it records the key {recorded}..., not this build's {key[:16]}..."
        return discard(entry, f"{why} (an entry copied or moved from elsewhere)", what)
    if meta.get("weights") != weights:
        recorded = str(meta.get("weights"))[:16]
        why = f"it records the weights digest {recorded}..., not these weights' {weights[:16]}..."
        return discard(entry, why, what)
    files = meta.get("files")
    if not isinstance(files, dict) or not files:
        return discard(entry, f"its {META_FILE} records no hashes of its files", what)
    try:
        found = {p.name for p in entry.iterdir()} - {META_FILE}
        if found != set(files):
            return discard(entry, f"it holds {sorted(found)}, expected {sorted(files)}", what)
        for name, digest in files.items():
            if sha256_file(entry / name) != digest:
                why = f"{name} does not match the sha256 recorded when it was written"
                return discard(entry, why, what)
    except FileNotFoundError:
        return None  # removed by a concurrent rebuild while it was checked
    except OSError as err:
        return discard(entry, f"its files cannot be read ({err})", what)
    return meta


def discard(entry: Path, why: str, what: str) -> None:
    """Remove an unusable ``what`` cache entry, warning with a `CacheWarning` that names it."""
    warnings.warn(
        f"{what} cache entry {str(entry)!r} is corrupt or not this build's: {why}; rebuilding "
        f"it. (The cache lives under ${CACHE_ENV} or ~/.cache/fm-adapters; entries can be "
        "deleted at any time.)",
        CacheWarning,
        stacklevel=4,
    )
    remove(entry)
    return None


def remove(entry: Path) -> None:
    """Take ``entry`` away (renamed aside first, so no reader sees it half removed); nothing
    happens when it is already gone or cannot be removed (a read-only cache)."""
    trash = entry.with_name(f".{entry.name}.{os.urandom(6).hex()}.trash")
    try:
        os.rename(entry, trash)
    except OSError:
        return
    if trash.is_dir() and not trash.is_symlink():
        shutil.rmtree(trash, ignore_errors=True)
    else:
        trash.unlink(missing_ok=True)


@contextlib.contextmanager
def staging(entry: Path, source: str, what: str) -> Iterator[Path | None]:
    """A private directory beside ``entry`` to build it in, removed on exit (after `publish`
    it is empty). Yields None, after a `CacheWarning` naming ``source`` (see `root_source`),
    when the cache location cannot be written: the caller builds without the cache."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", suffix=".tmp", dir=entry.parent))
    except OSError as err:
        warnings.warn(
            f"the {what} cache location {str(entry.parent)!r} cannot be used ({err}); building "
            f"without the cache. It comes from {source}.",
            CacheWarning,
            stacklevel=4,
        )
        yield None
        return
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def publish(
    work: Path, entry: Path, meta: dict[str, Any], what: str
) -> tuple[dict[str, Any], bool] | None:
    """Record the files built in ``work`` (a `staging` directory) and move it into place.

    Args:
        meta: the entry's metadata; must hold ``key`` and ``weights`` (see `load`).

    Returns:
        ``(meta, True)`` when this build's entry is in place (meta as `load` reads it back);
        ``(meta, False)`` when a concurrent build of the same entry published first (its meta,
        checked by `load`; ``work`` is left for `staging` to remove); None when every try
        found an unusable entry in the way that could not be removed (``work`` is untouched:
        serve it uncached).
    """
    meta = {**meta, "files": {p.name: sha256_file(p) for p in sorted(work.iterdir())}}
    with atomic_write(work / META_FILE) as staged:
        staged.write_text(json.dumps(meta, indent=2))
    meta = json.loads(json.dumps(meta))  # the same plain lists and dicts as `load` returns
    for _ in range(PUBLISH_TRIES):
        try:
            os.rename(work, entry)  # atomic; fails when a non-empty entry is in the way
            return meta, True
        except OSError as err:
            if err.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
                raise
        theirs = load(entry, meta["key"], meta["weights"], what)  # removes an unusable one
        if theirs is not None:
            return theirs, False
    return None
