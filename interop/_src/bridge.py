"""The DLPack bridge: ``to_jax``, ``to_torch``, ``to_numpy``, ``to_ortvalue``.

The ``copy`` contract (the array API's, made true on every path):

* ``copy=True``: the result owns a new buffer, always (JAX 0.10 on the CPU shares memory even
  for ``from_dlpack(copy=True)``, so the copy is made here, as a fresh C-contiguous buffer).
* ``copy=False``: the result shares the input's memory, or ``BufferError`` says why it cannot
  and what to do.
* ``copy=None``: share when the memory allows, copy when it must (``copy_reason`` tells which).

Shared memory means shared mutation: writing into the source (``t.add_(1)``) changes the JAX
array made from it, which JAX assumes never happens. Treat a shared source as frozen for the
lifetime of its consumers, or pass ``copy=True``.

Hazards, each handled on purpose (and tested):

* non-compact strides (a slice with a step): JAX and ONNX Runtime refuse them -> copy.
  JAX accepts transpositions of a dense buffer; ONNX Runtime only C-contiguous ones.
* buffers not 64-byte aligned: XLA's CPU client silently copies them -> reported as a copy.
* 64-bit dtypes without ``jax_enable_x64``: JAX would narrow them silently -> ``TypeError``
  unless ``to_jax(..., downcast=True)``, which narrows into a new buffer and raises
  ``OverflowError`` if an integer does not fit.
* tensors that require grad: detached (the result shares memory but has no autograd history).
* bfloat16: NumPy has no native bfloat16 and no DLPack for it; NumPy results use
  ``ml_dtypes.bfloat16`` (what JAX uses), sharing memory.
* read-only NumPy arrays: torch has no read-only tensors, so ``to_torch`` copies (and
  ``copy=False`` raises); JAX and ONNX Runtime never write inputs, so they share.
* bool, float16, 0-d and empty arrays: shared like any other (an empty array has no pointer).
* CUDA: consumers that take a stream (torch, JAX) get it through ``__dlpack__(stream=...)``;
  before ONNX Runtime or the host read CUDA memory, the producer's stream is synchronised.
* device mismatch (a CUDA tensor to a CPU consumer): a copy (``copy=False`` raises).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import onnxruntime as ort
import torch

from interop._src import arrays as _arr
from interop._src import dtypes as _dt
from interop._src import fast as _fast
from interop._src.arrays import CPU, ArrayInfo

TARGETS = ("jax", "torch", "numpy", "ort")
_FIX = {
    "jax": "pass copy=None (copy only when needed) or copy=True",
    "torch": "pass copy=None or copy=True",
    "numpy": "pass copy=None or copy=True",
    "ort": "pass copy=None or copy=True",
}


# -- where each consumer puts the result ------------------------------------------------------


def _has_jax_gpu() -> bool:
    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:
        return False


def _ort_has_cuda() -> bool:
    return "CUDAExecutionProvider" in ort.get_available_providers()


def _target_device(info: ArrayInfo, target: str, device: Any) -> tuple[str, int]:
    """Where the result will live: the producer's device unless the consumer cannot go there."""
    if device is not None:
        if target == "jax":
            return CPU if device.platform == "cpu" else ("cuda", device.id)
        dev = torch.device(device)
        return CPU if dev.type == "cpu" else (dev.type, dev.index or 0)
    if info.device == CPU or target == "torch":
        return info.device
    if target == "jax" and _has_jax_gpu():
        return info.device
    if target == "ort" and _ort_has_cuda():
        return info.device
    return CPU


# -- why a copy is needed ---------------------------------------------------------------------


def _reasons(info: ArrayInfo, target: str, dest: tuple[str, int], downcast: bool) -> list[str]:
    out = []
    if dest != info.device:
        out.append(
            f"it lives on {_fmt(info.device)} and the {target} result must be on {_fmt(dest)}"
        )
    if target == "jax":
        if not info.compact:
            out.append(f"its strides {info.strides} are not a dense layout (JAX refuses them)")
        if info.device == CPU and not info.aligned and info.kind != "jax":
            out.append(
                f"its buffer at {info.ptr:#x} is not {_arr.ALIGNMENT}-byte aligned "
                "(XLA's CPU client would silently copy it)"
            )
        if downcast and _dt.narrow(info.dtype) != info.dtype:
            out.append(f"narrowing {info.dtype} to {_dt.narrow(info.dtype)} writes a new buffer")
    elif target == "torch" and info.kind == "numpy":
        if info.readonly:
            out.append("NumPy marks it read-only and torch has no read-only tensors")
        if any(s < 0 for s in info.strides):
            out.append(f"its strides {info.strides} are negative (torch has none)")
    elif target == "ort" and not info.c_contiguous:
        out.append(f"its strides {info.strides} are not C-contiguous (ONNX Runtime needs that)")
    return out


def _fmt(device: tuple[str, int]) -> str:
    return "cpu" if device == CPU else f"{device[0]}:{device[1]}"


def copy_reason(x: Any, to: str, *, device: Any = None, downcast: bool = False) -> str | None:
    """Why converting ``x`` for consumer ``to`` needs a copy, or ``None`` if memory is shared.

    Args:
        x: one array (torch, JAX, NumPy, OrtValue or any ``__dlpack__`` object).
        to: ``"jax"``, ``"torch"``, ``"numpy"`` or ``"ort"``.
        device: the target device, as ``to_jax`` / ``to_torch`` take it.
        downcast: as in ``to_jax``.

    Returns:
        ``None`` when ``to_<to>(x, copy=None)`` shares ``x``'s memory, else the reasons.
    """
    if to not in TARGETS:
        raise ValueError(f"copy_reason: `to` must be one of {TARGETS}, got {to!r}")
    info = _arr.describe(x)
    reasons = _reasons(info, to, _target_device(info, to, device), downcast)
    return "; ".join(reasons) or None


# -- the conversions --------------------------------------------------------------------------


def _check_copy(fn: str, copy: Any) -> None:
    if not (copy is None or isinstance(copy, bool)):
        raise TypeError(f"{fn}: `copy` must be True, False or None, got {copy!r}")


def _map(fn: str, x: Any, leaf: Callable[[Any], Any]) -> Any:
    if type(x) in _fast.LEAF_TYPES:  # one array: no pytree walk
        return leaf(x)

    def one(path: Any, a: Any) -> Any:
        if not _arr.is_array(a):
            where = jax.tree_util.keystr(path) or "the input"
            raise TypeError(
                f"{fn}: expected an array (torch.Tensor, jax.Array, numpy.ndarray, "
                f"onnxruntime.OrtValue or an object with __dlpack__) at {where}, got "
                f"{type(a).__name__}. Fix: convert it first (e.g. np.asarray)."
            )
        return leaf(a)

    return jax.tree_util.tree_map_with_path(one, x, is_leaf=_arr.is_array)


def _convert(a: Any, target: str, copy: bool | None, device: Any, downcast: bool) -> Any:
    if copy is not True and device is None:
        out = _fast.share(a, target)
        if out is not None:
            return out
    info = _arr.describe(a)
    fn = f"to_{'ortvalue' if target == 'ort' else target}"
    dtype = info.dtype
    if target == "jax" and _dt.narrow(dtype) != dtype:
        if not downcast:
            raise TypeError(
                f"{fn}: got {dtype} but jax_enable_x64 is off, so JAX would silently narrow it "
                f"to {_dt.narrow(dtype)}. Fix: jax.config.update('jax_enable_x64', True), cast it "
                f"yourself, or pass downcast=True (checked: integers that do not fit raise)."
            )
        dtype = _dt.narrow(dtype)
    if target == "ort" and dtype not in _dt.ORT_SUPPORTED:
        raise TypeError(
            f"{fn}: ONNX Runtime has no {dtype} tensors; expected one of "
            f"{sorted(_dt.ORT_SUPPORTED)}. Fix: cast the array first."
        )
    dest = _target_device(info, target, device)
    reasons = _reasons(info, target, dest, downcast)
    if copy is False and reasons:
        raise BufferError(
            f"{fn}(copy=False): cannot share memory because {'; '.join(reasons)}. "
            f"Fix: {_FIX[target]}, or make the source compact, aligned and on the target device."
        )
    if copy or reasons:
        fresh = _fresh_torch(a, info, dest, dtype)
        return _share(fresh, _arr.describe(fresh), target, device, check=False)
    return _share(a, info, target, device, check=copy is False)


def _fresh_torch(a: Any, info: ArrayInfo, dest: tuple[str, int], dtype: str) -> torch.Tensor:
    """A new C-contiguous torch buffer (64-byte aligned on the CPU) with ``a``'s values."""
    if info.kind == "numpy" and any(s < 0 for s in info.strides):
        # torch cannot view negative strides: a rare case, so it pays a second copy
        src = _arr.torch_alias(np.ascontiguousarray(a))
    else:
        src = _arr.torch_alias(a)
    target_dtype = _dt.NAME_TO_TORCH[dtype]
    if target_dtype != src.dtype and src.numel() and dtype.startswith(("int", "uint")):
        info_t = torch.iinfo(target_dtype)
        lo, hi = src.min().item(), src.max().item()
        if lo < info_t.min or hi > info_t.max:
            raise OverflowError(
                f"to_jax(downcast=True): values in [{lo}, {hi}] do not fit {dtype} "
                f"[{info_t.min}, {info_t.max}]. Fix: enable jax_enable_x64."
            )
    if dest != CPU:
        return src.to(
            device=f"{dest[0]}:{dest[1]}",
            dtype=target_dtype,
            memory_format=torch.contiguous_format,
            copy=True,
        )
    out = aligned_empty(tuple(src.shape), target_dtype)
    _arr.synchronize(src)  # a CUDA source is read by the host copy below
    out.copy_(src)
    return out


def aligned_empty(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised C-contiguous CPU tensor whose buffer is 64-byte aligned.

    torch's CPU allocator does not promise 64-byte alignment for small tensors, and XLA
    copies anything less aligned, so the bridge's own copies are allocated here.
    """
    nbytes = math.prod(shape) * dtype.itemsize
    raw = torch.empty(nbytes + _arr.ALIGNMENT, dtype=torch.uint8)
    offset = -raw.data_ptr() % _arr.ALIGNMENT
    return raw[offset : offset + nbytes].view(dtype).view(shape)


def _share(a: Any, info: ArrayInfo, target: str, device: Any, check: bool) -> Any:
    """Hand ``a`` to ``target`` without copying (the reasons were checked by the caller)."""
    if target == "torch":
        return _arr.torch_alias(a)
    if target == "numpy":
        if info.kind == "numpy":
            return a
        if info.kind == "jax":
            out = np.asarray(a)  # read-only: JAX arrays are immutable
        else:
            out = _arr.torch_to_numpy(_arr.torch_alias(a))
    elif target == "ort":
        if info.kind == "ort":
            return a
        _arr.synchronize(a)  # ONNX Runtime takes no stream: the producer must be done
        out = ort.OrtValue.from_dlpack(_arr.torch_alias(a))
    else:
        if info.kind == "jax":
            out = a
        else:
            out = jax.dlpack.from_dlpack(_arr.torch_alias(a), device=device, copy=False)
    if check and info.size and _arr.data_ptr(out) != info.ptr:
        raise BufferError(
            f"to_{target}(copy=False): the consumer copied the buffer anyway "
            f"(source {_fmt(info.device)} {info.dtype}{list(info.shape)}). Fix: copy=None."
        )
    return out


def to_jax(x: Any, *, copy: bool | None = None, device: Any = None, downcast: bool = False) -> Any:
    """Any array, or a dict/list/tuple of arrays, as JAX arrays; shares memory when it can.

    Args:
        x: torch tensors, JAX arrays, NumPy arrays, OrtValues or ``__dlpack__`` objects, of any
            shape ``(...)``, or a pytree of them.
        copy: True: new buffers; False: shared or ``BufferError``; None: shared when possible.
        device: a ``jax.Device``; default: the producer's device if JAX has it, else the CPU.
        downcast: with ``jax_enable_x64`` off, narrow 64-bit dtypes (checked) instead of
            raising ``TypeError``.

    Returns:
        The same structure with ``jax.Array`` leaves of the same shapes.

    Raises:
        BufferError: ``copy=False`` and the memory cannot be shared (the message says why).
        TypeError: a leaf is not an array; a 64-bit dtype without x64 and ``downcast=False``.
        OverflowError: ``downcast=True`` and an integer does not fit 32 bits.

    Example:
        >>> feats = interop.to_jax(torch_backbone(x))       # no copy
        >>> logits = head.apply(variables, feats)
    """
    if (copy is None or copy is False) and device is None:
        out = _fast.share(x, "jax")  # one easy array: skip the pytree walk and checks
        if out is not None:
            return out
    _check_copy("to_jax", copy)
    return _map("to_jax", x, lambda a: _convert(a, "jax", copy, device, downcast))


def to_torch(x: Any, *, copy: bool | None = None, device: Any = None) -> Any:
    """Any array, or a pytree of arrays, as torch tensors (detached); shares memory when it can.

    Args:
        x: arrays of any shape ``(...)`` or a pytree of them; see ``to_jax``.
        copy: the three-way contract (see the module docstring).
        device: a torch device; default: the producer's device.

    Returns:
        The same structure with ``torch.Tensor`` leaves (``requires_grad=False``). A tensor
        made from a JAX array shares JAX's immutable buffer: do not write into it.

    Raises:
        BufferError: ``copy=False`` and the memory cannot be shared (read-only NumPy arrays,
            negative strides, another device).
    """
    if (copy is None or copy is False) and device is None:
        out = _fast.share(x, "torch")  # one easy array: skip the pytree walk and checks
        if out is not None:
            return out
    _check_copy("to_torch", copy)
    return _map("to_torch", x, lambda a: _convert(a, "torch", copy, device, False))


def to_numpy(x: Any, *, copy: bool | None = None) -> Any:
    """Any array, or a pytree of arrays, as NumPy arrays on the host; shares memory when it can.

    bfloat16 comes back as ``ml_dtypes.bfloat16``. Arrays shared with JAX are read-only.

    Raises:
        BufferError: ``copy=False`` for memory that is not on the host (CUDA).
    """
    if copy is None or copy is False:
        out = _fast.share(x, "numpy")  # one easy array: skip the pytree walk and checks
        if out is not None:
            return out
    _check_copy("to_numpy", copy)
    return _map("to_numpy", x, lambda a: _convert(a, "numpy", copy, None, False))


def to_ortvalue(x: Any, *, copy: bool | None = None) -> Any:
    """Any array, or a pytree of arrays, as ``onnxruntime.OrtValue``; shares memory when it can.

    ONNX Runtime needs C-contiguous memory and has no complex dtypes. CUDA memory stays on
    the GPU when ONNX Runtime has the CUDA provider (the producer's stream is synchronised
    first, since ONNX Runtime takes no stream), else it is copied to the host.

    Raises:
        BufferError: ``copy=False`` and the memory is strided or on an unusable device.
        TypeError: a dtype ONNX Runtime does not have.
    """
    if copy is None or copy is False:
        out = _fast.share(x, "ort")  # one easy array: skip the pytree walk and checks
        if out is not None:
            return out
    _check_copy("to_ortvalue", copy)
    return _map("to_ortvalue", x, lambda a: _convert(a, "ort", copy, None, False))
