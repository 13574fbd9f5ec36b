"""Device names and placement: the one place that knows what ``device=`` means.

A device is named as torch names it: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``. `normalize_device`
checks a name without importing a framework; `resolve_device` and `jax_device` turn it into
the framework's device (and fail when it is not there); `off_device` and `check_placed` check
where params ended up; `check_onnx_device` checks the argument against an ONNX spec's own field;
`device_kind` and `input_device` serve the application (``--device``, where batches go).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from .adapter import Adapter
from .errors import BuildError

_DEVICE_RE = re.compile(r"(cpu|cuda)(?::(\d+))?")
_DEVICE_EXPECTED = "'cpu', 'cuda', 'cuda:N' (N a GPU index) or a torch.device of those"


def normalize_device(device: Any) -> str | None:
    """``device`` as a canonical name: ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (None stays None).

    Accepts those strings (``"cpu:0"`` is ``"cpu"``) and ``torch.device`` objects (anything
    with ``type`` and ``index``), without importing a framework: whether the device exists is
    checked by the builder that uses it.

    Raises:
        BuildError: not one of those forms (``"gpu"``, ``"mps"``, ``3``, ...).
    """
    if device is None:
        return None
    if isinstance(device, str):
        text = device.strip()
    elif isinstance(getattr(device, "type", None), str) and hasattr(device, "index"):
        index = device.index
        text = device.type if index is None else f"{device.type}:{index}"
    else:
        raise BuildError("device", "not a device", expected=_DEVICE_EXPECTED, got=device)
    match = _DEVICE_RE.fullmatch(text)
    if match is None:
        raise BuildError(
            "device",
            "not a device adapters can run on",
            expected=_DEVICE_EXPECTED,
            got=device,
            fix="Use 'cuda' for a GPU ('gpu' is not a torch device name)"
            if text.startswith("gpu")
            else None,
        )
    kind, index = match.group(1), match.group(2)
    if kind == "cpu" or index is None:
        return kind
    return f"cuda:{int(index)}"


#: device types a torch adapter can be built on
DEVICE_TYPES = ("cpu", "cuda")


def resolve_device(device: Any) -> Any:
    """``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a ``torch.device`` -> a usable ``torch.device``.

    ``"cuda"`` without an index becomes the current CUDA device (``cuda:0`` unless changed), so
    that it compares equal to the device tensors report.

    Raises:
        BuildError: ``device`` is not a device name, not a CPU or CUDA device, asks for CUDA
            when torch sees none, or names a GPU index that does not exist.
    """
    import torch

    if device is None:
        return None
    if not isinstance(device, (str, torch.device)):
        raise BuildError(
            "device",
            "not a device",
            expected="'cpu', 'cuda', 'cuda:N' or a torch.device",
            got=device,
        )
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as err:
        raise BuildError(
            "device",
            "not a device name torch understands",
            expected="'cpu', 'cuda', 'cuda:N' or a torch.device",
            got=device,
        ) from err
    if dev.type not in DEVICE_TYPES:
        raise BuildError(
            "device",
            f"torch adapters run on {' or '.join(DEVICE_TYPES)}, not {dev.type!r}",
            expected="'cpu', 'cuda', 'cuda:N' or a torch.device of those types",
            got=device,
        )
    if dev.type == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        build = f"a CUDA {torch.version.cuda} build" if torch.version.cuda else "a CPU-only build"
        raise BuildError(
            "device",
            f"{str(dev)!r} asks for CUDA, but torch sees no GPU (torch {torch.__version__} is "
            f"{build})",
            fix="Pass device='cpu' (or leave device out), or run on a machine with a GPU and a "
            "CUDA build of torch",
        )
    count = torch.cuda.device_count()
    index = torch.cuda.current_device() if dev.index is None else dev.index
    if index >= count:
        raise BuildError(
            "device",
            f"there is no GPU {index}: torch sees {count} "
            f"({', '.join(f'cuda:{i}' for i in range(count))})",
            got=device,
            fix="Pick an index below the GPU count, or set CUDA_VISIBLE_DEVICES",
        )
    return torch.device("cuda", index)


def leaf_devices(tree: Any) -> Iterator[str]:
    """The device names (``"cpu"``, ``"cuda:0"``) of torch tensors and JAX arrays in ``tree``."""
    if isinstance(tree, Mapping):
        for value in tree.values():
            yield from leaf_devices(value)
    elif isinstance(tree, (list, tuple)):
        for value in tree:
            yield from leaf_devices(value)
    elif "torch" in sys.modules and isinstance(tree, sys.modules["torch"].Tensor):
        yield str(tree.device)
    elif callable(getattr(tree, "devices", None)):  # a jax.Array
        for d in tree.devices():
            yield jax_device_name(d)


def jax_device_name(d: Any) -> str:
    """``"cpu"`` or ``"cuda:N"`` for a ``jax.Device`` (the names torch uses)."""
    return "cpu" if d.platform == "cpu" else f"cuda:{d.id}"


def off_device(params: Any, device: str) -> list[str]:
    """The devices, other than ``device``, holding arrays of ``params`` (sorted names)."""
    return sorted({d for d in leaf_devices(params) if not _on(d, device)})


def _on(found: str, device: str) -> bool:
    return found == device or (device == "cuda" and found.startswith("cuda:"))


def check_placed(adapter: Adapter, device: str, spec: Any) -> Adapter:
    """``adapter`` if all its params are on ``device``, else a `BuildError`."""
    elsewhere = off_device(adapter.params, device)
    if elsewhere:
        raise BuildError(
            "device",
            f"the builder for {type(spec).__name__} takes no device argument and put the "
            f"params on {', '.join(elsewhere)}, not {device}",
            fix="Give the builder a device keyword (builder(spec, *, device=None) -> Adapter) "
            "that places the params, or leave device out",
        )
    return adapter


def check_onnx_device(spec: Any, device: str) -> None:
    kind, _, index = device.partition(":")
    if kind != spec.device or index not in ("", "0"):
        raise BuildError(
            "device",
            f"device={device!r} conflicts with the ONNX spec's device {spec.device!r}"
            + (" (an ONNX spec runs on GPU 0 only)" if kind == spec.device else ""),
            fix=f"Set the spec's device field (device: {kind}) and leave the argument out, or "
            f"pass device={spec.device!r}",
        )


def jax_device(device: str) -> Any:
    """A canonical device name (``"cpu"``, ``"cuda"``, ``"cuda:N"``) -> the ``jax.Device``.

    Raises:
        BuildError: JAX has no GPU backend, or no GPU with that index.
    """
    import jax

    kind, _, index = device.partition(":")
    platform = "cpu" if kind == "cpu" else "gpu"
    try:
        devices = jax.devices(platform)
    except RuntimeError as err:
        raise BuildError(
            "device",
            f"{device!r} asks for a GPU, but JAX {jax.__version__} has no GPU backend "
            f"(it has: {jax.default_backend()})",
            fix="Pass device='cpu' (or leave device out), or install jax[cuda12] on a machine "
            "with a GPU",
        ) from err
    i = int(index) if index else 0
    if i >= len(devices):
        raise BuildError(
            "device",
            f"there is no GPU {i}: JAX sees {len(devices)}",
            got=device,
            fix="Pick an index below the GPU count, or set CUDA_VISIBLE_DEVICES",
        )
    return devices[i]


def device_kind(device: Any) -> str:
    """``"cpu"`` or ``"cuda"`` of a device name (a `BuildError` if it is not one)."""
    return normalize_device(device).partition(":")[0]


def input_device(adapter: Any) -> str | None:
    """Where a torch adapter wants its input (``adapter.info["device"]``), if not the CPU.

    None for the CPU and for other frameworks (ONNX Runtime and JAX take host arrays).
    """
    if getattr(adapter, "framework", None) != "torch":
        return None
    info = getattr(adapter, "info", None) or {}
    device = info.get("device") if isinstance(info, Mapping) else None
    return None if device in (None, "cpu") else str(device)
