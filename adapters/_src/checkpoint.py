"""Checkpoints shared by every torch source: read, verify, unwrap, strip, and load strictly.

A checkpoint is a local path or an fsspec URL (``file://``, ``s3://``, ``memory://``, ...)
to a ``.safetensors`` file or a torch file. Torch files are read with ``weights_only=True``
(no pickled code runs). Reading never touches the model; `load_into` checks the keys first
so a checkpoint that does not fit leaves the module as it was.

Local files must be regular files (links resolved): a FIFO, a device such as ``/dev/zero`` or
a folder is refused before a byte is read, and the hash reads no more than the file's size.

Memory. A local file is hashed in `HASH_CHUNK` pieces and then memory-mapped
(``safetensors.torch.load_file``; ``torch.load(mmap=True)`` for zip-format torch files whose
records are stored, see `torch_checkpoint`), so the peak while building is about the file plus
the model, not the file read whole, then deserialised into a second copy, then copied into the
model (``benchmarks/checkpoint_memory.py`` measures both). Compressed torch archives (bounded)
and remote fsspec files are read whole into memory. The digest is checked on the file before it
is mapped; a file replaced between the two by someone with write access to it is not guarded
against.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Mapping
from typing import Any, BinaryIO

import torch

from . import torch_checkpoint
from .errors import BuildError
from .offline import require_online

#: top-level keys that wrap the actual state dict in common training checkpoints (``teacher``:
#: DINO-style self-distillation checkpoints, whose backbone is the teacher; ``net``: MONAI-style
#: training checkpoints such as SuPreM's)
WRAPPER_KEYS = ("state_dict", "model", "module", "teacher", "net")
#: how many missing / unexpected keys an error message shows
SHOWN_KEYS = 5
#: bytes hashed per read: large enough to be fast, small enough to keep memory flat
HASH_CHUNK = 1 << 20
#: URL schemes that name a file on this machine (memory-mapped, not read whole)
LOCAL_SCHEMES = ("file", "local")


def local_file(path: str) -> str | None:
    """The filesystem path of a checkpoint on this machine (a plain path or a ``file://`` URL);
    None for any other fsspec URL."""
    if "://" not in path:
        return path
    scheme, rest = path.split("://", 1)
    return rest if scheme.lower() in LOCAL_SCHEMES else None


def file_sha256(path: str, field: str = "checkpoint_path") -> str:
    """The hex sha256 of a local regular file, read in `HASH_CHUNK` pieces (memory stays flat)
    and never past the size the file had when opened.

    Raises:
        BuildError: the file does not exist, is not a regular file, or cannot be read.
    """
    digest = hashlib.sha256()
    handle, left = open_regular(path, field)
    with handle:
        while left > 0:
            chunk = handle.read(min(HASH_CHUNK, left))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def open_regular(path: str, field: str = "checkpoint_path") -> tuple[BinaryIO, int]:
    """``(binary handle, size)`` of a local file that is, links resolved, a regular file.

    Opened without blocking and checked on the open descriptor, so a FIFO (which would wait for
    a writer), a device such as ``/dev/zero`` (endless) or a folder is refused before any byte
    is read, even if it replaced the file a moment ago.

    Raises:
        BuildError: naming ``field``: a NUL byte in the path, a missing or unreadable file, or
            anything but a regular file.
    """
    check_path(path, field)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError as err:
        raise _missing(path, field) from err
    except OSError as err:
        raise BuildError(field, f"cannot read checkpoint {path!r}: {err}") from err
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise _not_regular(path, field, info.st_mode)
    return os.fdopen(fd, "rb"), info.st_size


def check_path(path: str, field: str = "checkpoint_path") -> None:
    """Raise unless ``path`` can name a file (a NUL byte cannot)."""
    if "\x00" in path:
        raise BuildError(
            field,
            "the path contains a NUL byte ('\\x00'), which no file name can hold",
            got=path,
            fix="Remove the NUL byte (often from a template or an environment variable)",
        )


#: what a non-regular file is, by its `stat` test
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_regular(path: str, field: str, mode: int) -> BuildError:
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    real = os.path.realpath(path)
    links = f" (a link to {real!r})" if real != os.path.abspath(path) else ""
    return BuildError(
        field,
        f"checkpoint {path!r}{links} is {kind}, not a regular file; nothing was read",
        fix="Point it at a checkpoint file (.safetensors / .pt / .pth / .bin)",
    )


def _missing(path: str, field: str) -> BuildError:
    return BuildError(
        field,
        f"checkpoint file {path!r} does not exist",
        fix="Give the path of an existing .safetensors / .pt / .pth / .bin file",
    )


def read_bytes(path: str, field: str = "checkpoint_path") -> bytes:
    """The raw bytes of a local path or fsspec URL.

    Raises:
        BuildError: the file does not exist or cannot be read.
    """
    import fsspec

    check_path(path, field)
    local = local_file(path)
    if local is not None:
        handle, size = open_regular(local, field)
        with handle:
            return handle.read(size)
    scheme = path.split("://", 1)[0].lower()
    if scheme != "memory":
        require_online(
            field,
            f"checkpoint {path!r}",
            "Download the file once while online and set checkpoint_path to the local copy",
        )
    try:
        with fsspec.open(path, "rb") as f:
            return f.read()
    except FileNotFoundError as err:
        raise _missing(path, field) from err
    except (OSError, ValueError, ImportError) as err:
        raise BuildError(field, f"cannot read checkpoint {path!r}: {err}") from err


def verify_sha256(actual: str, expected: str | None, path: str) -> None:
    """Raise unless the hex digest ``actual == expected`` (a no-op when ``expected`` is None).

    The digest of the file is not printed, so a wrong file cannot be "fixed" by copying it.

    Raises:
        BuildError: naming ``checkpoint_sha256`` when the digests differ.
    """
    if expected is None:
        return
    if actual != expected.lower():
        raise BuildError(
            "checkpoint_sha256",
            f"the sha256 of {path!r} does not match the expected digest; nothing was loaded",
            fix="Check that checkpoint_path points at the intended file, or update "
            "checkpoint_sha256 if the file was deliberately replaced",
        )


def read_state_dict(
    path: str,
    *,
    sha256: str | None = None,
    prefix: str | None = None,
    field: str = "checkpoint_path",
) -> dict[str, torch.Tensor]:
    """Read a checkpoint into a flat ``{name: tensor}`` dict.

    Args:
        path: local path or fsspec URL; ``.safetensors`` is read with safetensors, anything
            else with ``torch.load(weights_only=True)``.
        sha256: expected hex digest, verified before anything is deserialised.
        prefix: key prefix to strip (e.g. ``"module."`` from DDP checkpoints); keys without it
            are kept unchanged.
        field: spec field named in errors.

    Returns:
        The state dict, with a ``state_dict`` / ``model`` / ``module`` wrapper unwrapped.

    Raises:
        BuildError: missing file, digest mismatch, unreadable or non-tensor content.
    """
    check_path(path, field)
    local = local_file(path)
    source: str | bytes
    if local is None:
        source = read_bytes(path, field)
        if sha256 is not None:
            verify_sha256(hashlib.sha256(source).hexdigest(), sha256, path)
    else:
        source = local
        if sha256 is not None:
            verify_sha256(file_sha256(local, field), sha256, path)
        else:
            open_regular(local, field)[0].close()  # the precise error: missing, a FIFO, ...
    if path.lower().endswith(".safetensors"):
        state: Any = _load_safetensors(source, path, field)
    else:
        state = torch_checkpoint.load(source, path, field)
    state = unwrap(state, path, field)
    if prefix:
        state = {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in state.items()}
    return state


def _load_safetensors(source: str | bytes, path: str, field: str) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load as load_bytes
    from safetensors.torch import load_file

    try:
        # load_file maps the file: its tensors are paged in as the model copies them
        return load_bytes(source) if isinstance(source, bytes) else load_file(source)
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise BuildError(field, f"{path!r} is not a valid safetensors file: {err}") from err


def unwrap(state: Any, path: str, field: str = "checkpoint_path") -> dict[str, torch.Tensor]:
    """Peel ``{"state_dict": {...}}``-style wrappers until a flat dict of tensors remains."""
    for _ in range(3):
        if not isinstance(state, Mapping):
            break
        if all(isinstance(v, torch.Tensor) for v in state.values()):
            return dict(state)
        inner = next((state[k] for k in WRAPPER_KEYS if isinstance(state.get(k), Mapping)), None)
        if inner is None:
            break
        state = inner
    raise BuildError(
        field,
        f"{path!r} does not hold a state dict of tensors",
        expected=f"a mapping of names to tensors, optionally under one of {list(WRAPPER_KEYS)}",
        got=type(state).__name__
        if not isinstance(state, Mapping)
        else f"keys {sorted(map(str, state))[:SHOWN_KEYS]}",
    )


def key_mismatch(expected: list[str], got: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """``(missing, unexpected)`` key lists, each in the order of its source."""
    have = set(got)
    want = set(expected)
    return [k for k in expected if k not in have], [k for k in got if k not in want]


def describe_mismatch(missing: list[str], unexpected: list[str]) -> str:
    """``"3 missing keys (a, b, c), 1 unexpected key (d)"`` with at most `SHOWN_KEYS` each."""

    def part(keys: list[str], what: str) -> str:
        shown = ", ".join(keys[:SHOWN_KEYS]) + (", ..." if len(keys) > SHOWN_KEYS else "")
        return f"{len(keys)} {what} key{'s' if len(keys) != 1 else ''} ({shown})"

    parts = [part(k, w) for k, w in ((missing, "missing"), (unexpected, "unexpected")) if k]
    return ", ".join(parts)


def load_into(
    module: torch.nn.Module,
    state: Mapping[str, torch.Tensor],
    *,
    strict: bool = True,
    path: str = "<state dict>",
    field: str = "checkpoint_path",
) -> None:
    """Copy ``state`` into ``module`` after checking that it fits (`fitting`).

    Args:
        module: the target module (changed only when the checkpoint fits).
        state: flat ``{name: tensor}`` dict.
        strict: every key of ``module.state_dict()`` must be present and no other.
        path: named in errors.
        field: spec field named in errors.

    Raises:
        BuildError: keys do not match (with ``strict``), no key matches at all, or shapes differ.
    """
    module.load_state_dict(
        fitting(module, state, strict=strict, path=path, field=field), strict=False
    )


def fitting(
    module: torch.nn.Module,
    state: Mapping[str, Any],
    *,
    strict: bool = True,
    path: str = "<state dict>",
    field: str = "checkpoint_path",
) -> dict[str, Any]:
    """The entries of ``state`` that ``module`` has, once the keys and shapes are checked
    (see `load_into`; the values are not read, so they may be meta tensors).

    Raises:
        BuildError: keys do not match (with ``strict``), no key matches at all, or shapes differ.
    """
    own = module.state_dict()
    missing, unexpected = key_mismatch(list(own), state)
    if (strict and (missing or unexpected)) or len(missing) == len(own):
        hint = ""
        if unexpected and missing:
            common = _common_prefix(unexpected)
            if common:
                hint = f" The checkpoint keys share the prefix {common!r}: set checkpoint_prefix."
        raise BuildError(
            field,
            f"checkpoint {path!r} does not fit the model: {describe_mismatch(missing, unexpected)}",
            fix="Use the checkpoint of this architecture, set checkpoint_prefix to strip a key "
            "prefix, or set strict: false to load the matching keys only." + hint,
        )
    shapes = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    if shapes:
        raise BuildError(
            field,
            f"checkpoint {path!r} has {len(shapes)} tensor(s) of the wrong shape "
            f"({'; '.join(shapes[:SHOWN_KEYS])})",
            fix="Build the model with the arguments the checkpoint was trained with",
        )
    return {k: v for k, v in state.items() if k in own}


def _common_prefix(keys: list[str]) -> str:
    first = keys[0].split(".")[0] + "."
    return first if all(k.startswith(first) for k in keys) else ""
