"""Looking at any array without touching its memory: kind, dtype, layout, pointer, device.

``describe(x)`` returns an ``ArrayInfo`` for a torch tensor, a JAX array, a NumPy array, an
ONNX Runtime ``OrtValue`` or anything with ``__dlpack__``; ``torch_alias(x)`` is a torch tensor
over the same memory (the bridge's common currency: torch reads every layout and dtype).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import jax
import numpy as np
import onnxruntime as ort
import torch

from interop._src import dtypes as _dt

CPU = ("cpu", 0)
ALIGNMENT = 64  # bytes; XLA's CPU client copies any buffer that is not aligned to this

_ORT_VALUE = ort.OrtValue
_DL_CUDA, _DL_CUDA_HOST = 2, 3


class ArrayInfo(NamedTuple):
    """What the bridge needs to know about an array, read without copying it.

    Attributes:
        kind: ``"torch"``, ``"jax"``, ``"numpy"`` or ``"ort"``.
        dtype: neutral dtype name (see ``interop._src.dtypes``).
        shape: the shape.
        strides: element strides (may be negative for NumPy views).
        ptr: address of the first element.
        device: ``("cpu", 0)`` or ``("cuda", index)``.
        readonly: the producer forbids writes (NumPy ``writeable=False``; JAX arrays).
        requires_grad: a torch tensor tracked by autograd.
    """

    kind: str
    dtype: str
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    ptr: int
    device: tuple[str, int]
    readonly: bool
    requires_grad: bool

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def c_contiguous(self) -> bool:
        return _is_c_contiguous(self.shape, self.strides)

    @property
    def compact(self) -> bool:
        """Dense in memory in some axis order (a transposition of a C-contiguous buffer)."""
        if self.size <= 1:
            return True
        dims = sorted(
            ((abs(s), n, s) for n, s in zip(self.shape, self.strides, strict=True) if n != 1),
            key=lambda d: d[0],
        )
        expected = 1
        for abs_stride, n, stride in dims:
            if stride < 0 or abs_stride != expected:
                return False
            expected *= n
        return True

    @property
    def aligned(self) -> bool:
        return self.size == 0 or self.ptr % ALIGNMENT == 0


def _is_c_contiguous(shape: tuple[int, ...], strides: tuple[int, ...]) -> bool:
    expected = 1
    for n, s in zip(reversed(shape), reversed(strides), strict=True):
        if n != 1 and s != expected:
            return False
        expected *= n
    return True


def _c_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    out, acc = [], 1
    for n in reversed(shape):
        out.append(acc)
        acc *= max(n, 1)
    return tuple(reversed(out))


def is_array(x: Any) -> bool:
    """Whether ``x`` is an array the bridge understands (a pytree leaf)."""
    return isinstance(x, torch.Tensor | jax.Array | np.ndarray | _ORT_VALUE) or (
        hasattr(x, "__dlpack__") and hasattr(x, "__dlpack_device__")
    )


def _jax_device(x: jax.Array) -> tuple[str, int]:
    devices = x.devices()
    if len(devices) != 1:
        raise BufferError(
            f"interop: expected a JAX array on one device, got one sharded over {len(devices)} "
            "devices. Fix: gather it first (jax.device_get or x.addressable_data(0))."
        )
    (dev,) = devices
    return ("cpu", 0) if dev.platform == "cpu" else ("cuda", dev.id)


def describe(x: Any) -> ArrayInfo:
    """Describe ``x`` without copying it; raises ``TypeError`` for a non-array."""
    if isinstance(x, torch.Tensor):
        dev = x.device
        return ArrayInfo(
            "torch",
            _torch_name(x.dtype),
            tuple(x.shape),
            tuple(x.stride()),
            x.data_ptr(),
            CPU if dev.type == "cpu" else (dev.type, dev.index or 0),
            False,
            x.requires_grad,
        )
    if isinstance(x, jax.Array):
        shape = tuple(x.shape)
        dev = _jax_device(x)
        ptr = x.unsafe_buffer_pointer() if not isinstance(x, jax.core.Tracer) else 0
        return ArrayInfo("jax", x.dtype.name, shape, _c_strides(shape), ptr, dev, True, False)
    if isinstance(x, np.ndarray):
        item = x.itemsize or 1
        strides = tuple(s // item if s % item == 0 else 0 for s in x.strides)
        return ArrayInfo(
            "numpy",
            _dt.numpy_name(x.dtype),
            tuple(x.shape),
            strides,
            x.ctypes.data,
            CPU,
            not x.flags.writeable,
            False,
        )
    if isinstance(x, _ORT_VALUE):
        shape = tuple(x.shape())
        name = _dt.ORT_TO_NAME.get(x.data_type(), x.data_type())
        dev = CPU if x.device_name().lower() == "cpu" else ("cuda", 0)
        if dev != CPU:
            dev = ("cuda", x.__dlpack_device__()[1])
        return ArrayInfo("ort", name, shape, _c_strides(shape), x.data_ptr(), dev, False, False)
    if hasattr(x, "__dlpack__") and hasattr(x, "__dlpack_device__"):
        info = describe(_from_foreign_dlpack(x))
        return info._replace(kind="dlpack")
    raise TypeError(
        f"interop: expected an array (torch.Tensor, jax.Array, numpy.ndarray, "
        f"onnxruntime.OrtValue or an object with __dlpack__), got {type(x).__name__}. "
        "Fix: pass an array, or a dict/list/tuple of arrays."
    )


def _torch_name(dtype: torch.dtype) -> str:
    try:
        return _dt.TORCH_TO_NAME[dtype]
    except KeyError:
        return str(dtype).removeprefix("torch.")


def _from_foreign_dlpack(x: Any) -> torch.Tensor:
    return torch.from_dlpack(x)


def data_ptr(x: Any) -> int:
    """Address of the first element of any array (0 for some empty arrays).

    Two arrays share memory when their ``data_ptr`` are equal (and both are non-empty).

    Example:
        >>> interop.data_ptr(interop.to_jax(t)) == t.data_ptr()
        True
    """
    return describe(x).ptr


def synchronize(x: Any) -> None:
    """Block until every pending write to ``x`` by its producer's stream is done (CUDA only).

    Used before handing memory to a consumer that takes no stream (ONNX Runtime, the host).
    """
    if isinstance(x, torch.Tensor) and x.is_cuda:
        torch.cuda.current_stream(x.device).synchronize()
    elif isinstance(x, jax.Array):
        x.block_until_ready()


def torch_alias(x: Any) -> torch.Tensor:
    """A torch tensor over the same memory as ``x`` (never a copy), detached from autograd.

    NumPy's read-only flag is *not* carried over (torch has no read-only tensors): callers
    use the alias only to read, or hand it to an immutable consumer (JAX). NumPy views with
    negative strides have no torch alias and raise ``BufferError``.
    """
    if isinstance(x, torch.Tensor):
        return x.detach()
    if isinstance(x, np.ndarray):
        if any(s < 0 for s in x.strides):
            raise BufferError("torch cannot view a NumPy array with negative strides")
        if x.dtype == _dt.NUMPY_BFLOAT16:
            return _np_to_torch(x.view(np.int16)).view(torch.bfloat16)
        return _np_to_torch(x)
    if isinstance(x, jax.Array):
        return torch.from_dlpack(x)
    if isinstance(x, _ORT_VALUE):
        return torch.from_dlpack(x)
    return _from_foreign_dlpack(x)


def _np_to_torch(x: np.ndarray) -> torch.Tensor:
    if x.flags.writeable:
        return torch.from_numpy(x)
    with warnings.catch_warnings():
        # Read-only memory: torch warns that writes are undefined. The alias is only read
        # (or handed to JAX, which never writes); public paths honour the flag by copying.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(x)


def torch_to_numpy(t: torch.Tensor) -> np.ndarray:
    """The NumPy view of a CPU tensor (bfloat16 as ``ml_dtypes.bfloat16``), never a copy."""
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(_dt.NUMPY_BFLOAT16)
    return t.numpy()
