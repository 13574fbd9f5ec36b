"""An output path, checked before any work: its directory exists and is writable, and writing
it replaces none of the job's inputs. Imports no framework, so the command line checks
``--out`` before it loads torch."""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .backbone import resolve_spec
from .errors import CliError, EmbedError


def check_out(args: argparse.Namespace, **data: str | None) -> Path:
    """The command line's ``--out``, checked before the backbone is built: its directory
    exists and is writable, and it is none of the inputs (``data`` by flag name: ``--data``,
    ``--labels``; the spec file and the files the spec reads)."""
    inputs: dict[str, str | None] = {f"--{k}": v for k, v in data.items()}
    inputs["SPEC"] = args.spec
    if Path(args.spec).is_file():
        spec = resolve_spec(args.spec)
        inputs.update({f"SPEC {field}": v for field, v in spec_inputs(spec).items()})
    return check_output_path(args.out, inputs=inputs, flag="--out")


def check_out_format(out: str, engine: str) -> None:
    """``embed --out``: a ``.safetensors`` file (``--engine ray``: a directory), so the name
    never lies about the format written.

    Raises:
        CliError: the name does not fit the engine's output.
    """
    path = Path(out)
    if engine == "ray":
        if path.suffix in (".safetensors", ".npy", ".npz") or path.is_file():
            raise CliError(
                f"--out: --engine ray writes a directory of shards, got the file name {out!r}; "
                f"name a directory such as {str(path.with_suffix(''))!r}"
            )
        return
    if path.suffix != ".safetensors":
        raise CliError(
            f"--out: embed writes a .safetensors file, got {out!r}; name it "
            f"{str(path.with_suffix('.safetensors'))!r} (--engine ray writes a directory)"
        )


def check_output_path(
    out: str | os.PathLike[str],
    *,
    inputs: Mapping[str, str | os.PathLike[str] | None] | None = None,
    flag: str = "out",
) -> Path:
    """Fail early (before any work) if ``out`` cannot be written, or would replace an input.

    Args:
        out: the file to write.
        inputs: what the job reads, by the name of its argument (``{"data": ..., "spec": ...}``):
            files, or folders whose files are all inputs. None values and names that are not
            paths (``digits``, a registry name) are ignored.
        flag: how messages name ``out`` (the CLI passes ``--out``).

    Returns:
        ``out`` as a `Path`.

    Raises:
        EmbedError: ``out``'s directory is missing or not writable, ``out`` is a directory, or
            ``out`` is (or links to, or is a hard link of) one of ``inputs``.
    """
    path = Path(out)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise EmbedError(
            f"{flag}: expected a file in an existing directory, got {str(path)!r} whose directory "
            f"{str(parent)!r} does not exist; create it first"
        )
    if path.is_dir():
        raise EmbedError(f"{flag}: expected a file path, got the directory {str(path)!r}")
    for name, given in (inputs or {}).items():
        if given is not None and _is_input(path, Path(given)):
            raise EmbedError(
                f"{flag}: {str(path)!r} is the same file as the input {name} {str(given)!r} "
                f"(or a file in it), which writing would replace; choose another {flag}"
            )
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass  # the write itself comes after all the work: find out now that it can happen
    except OSError as err:
        raise EmbedError(
            f"{flag}: cannot write in the directory {str(parent)!r} of {str(path)!r} "
            f"({err.strerror or err}); choose a writable directory or fix its permissions"
        ) from err
    return path


def _is_input(out: Path, given: Path) -> bool:
    """Whether writing ``out`` replaces ``given`` or a file under it (links followed, hard
    links found by inode)."""
    try:
        target = out.stat()  # follows links; a missing out replaces nothing
        source = given.stat()
    except (FileNotFoundError, NotADirectoryError):
        return False
    if os.path.samestat(target, source) or out.resolve() == given.resolve():
        return True
    if not given.is_dir():
        return False
    if out.resolve().is_relative_to(given.resolve()):
        return True
    if target.st_nlink < 2:  # not a hard link: it can only be an input by its path
        return False
    for dirpath, _, filenames in os.walk(given):
        for fname in filenames:
            with contextlib.suppress(OSError):
                if os.path.samestat(target, os.stat(os.path.join(dirpath, fname))):
                    return True
    return False


def spec_inputs(spec: Any) -> dict[str, str]:
    """The local files a spec record reads (``path`` of an ONNX model and its external
    weights, ``checkpoint_path``), by field name."""
    found = {}
    for field in ("path", "checkpoint_path"):
        value = getattr(spec, field, None)
        if isinstance(value, str) and value and "://" not in value:
            found[field] = os.path.expanduser(value)
    if "path" in found:
        found["path external weights"] = found["path"] + ".data"
    return found
