"""Checkpoints shared by every torch source: read, verify, unwrap, strip, and load strictly.

A checkpoint is a local path or an fsspec URL (``file://``, ``s3://``, ``memory://``, ...)
to a ``.safetensors`` file or a torch file. Torch files are read with ``weights_only=True``
(no pickled code runs). Reading never touches the model; `load_into` checks the keys first
so a checkpoint that does not fit leaves the module as it was.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from typing import Any

import torch

from .errors import BuildError
from .offline import require_online

#: top-level keys that wrap the actual state dict in common training checkpoints (``teacher``:
#: DINO-style self-distillation checkpoints, whose backbone is the teacher; ``net``: MONAI-style
#: training checkpoints such as SuPreM's)
WRAPPER_KEYS = ("state_dict", "model", "module", "teacher", "net")
#: how many missing / unexpected keys an error message shows
SHOWN_KEYS = 5


def read_bytes(path: str, field: str = "checkpoint_path") -> bytes:
    """The raw bytes of a local path or fsspec URL.

    Raises:
        BuildError: the file does not exist or cannot be read.
    """
    import fsspec

    scheme = path.split("://", 1)[0].lower() if "://" in path else "file"
    if scheme not in ("file", "memory", "local"):
        require_online(
            field,
            f"checkpoint {path!r}",
            "Download the file once while online and set checkpoint_path to the local copy",
        )
    try:
        with fsspec.open(path, "rb") as f:
            return f.read()
    except FileNotFoundError as err:
        raise BuildError(
            field,
            f"checkpoint file {path!r} does not exist",
            fix="Give the path of an existing .safetensors / .pt / .pth / .bin file",
        ) from err
    except (OSError, ValueError, ImportError) as err:
        raise BuildError(field, f"cannot read checkpoint {path!r}: {err}") from err


def verify_sha256(data: bytes, expected: str | None, path: str) -> None:
    """Raise unless ``sha256(data) == expected`` (a no-op when ``expected`` is None).

    The digest of the file is not printed, so a wrong file cannot be "fixed" by copying it.
    """
    if expected is None:
        return
    if hashlib.sha256(data).hexdigest() != expected.lower():
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
    data = read_bytes(path, field)
    verify_sha256(data, sha256, path)
    if path.lower().endswith(".safetensors"):
        from safetensors.torch import load as load_safetensors

        try:
            state: Any = load_safetensors(data)
        except Exception as err:
            raise BuildError(field, f"{path!r} is not a valid safetensors file: {err}") from err
    else:
        try:
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as err:
            raise BuildError(
                field,
                f"cannot load {path!r} with torch.load(weights_only=True) ({_reason(err)})",
                fix="Save plain tensors (torch.save(model.state_dict(), path)) or a "
                ".safetensors file; pickled objects are refused for safety",
            ) from err
    state = unwrap(state, path, field)
    if prefix:
        state = {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in state.items()}
    return state


def _reason(err: BaseException) -> str:
    """The useful part of torch.load's long (and unsafe-advice-giving) error text."""
    text = str(err)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


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
    """Copy ``state`` into ``module`` after checking that it fits.

    Args:
        module: the target module (changed only when the checkpoint fits).
        state: flat ``{name: tensor}`` dict.
        strict: every key of ``module.state_dict()`` must be present and no other.
        path: named in errors.
        field: spec field named in errors.

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
    module.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)


def _common_prefix(keys: list[str]) -> str:
    first = keys[0].split(".")[0] + "."
    return first if all(k.startswith(first) for k in keys) else ""
