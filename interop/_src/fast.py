"""The bridge's fast path: the common zero-copy cases, decided from a few attribute reads.

The general path (``bridge._convert``) describes every array as an ``ArrayInfo``, lists the
reasons a copy is needed and only then shares memory: Python work per array, on top of the
consumers' own DLPack imports. The cases that dominate real use (a C-contiguous, 64-byte
aligned CPU tensor or NumPy array, a single-device CPU JAX array, an ONNX Runtime
output on the CPU) need none of that, so ``share(a, target)`` handles exactly those and
returns ``None`` for everything else (strided, unaligned, read-only, requires-grad, 64-bit
without x64, CUDA, sharded, empty, ``copy=True``, an explicit device), which then takes the
general path unchanged.

Consumer imports are done below their public wrappers where those were measured (by
profiling) to dominate; the bridge suite's ``raw_s`` column (the public import) against
``ours_s`` shows the difference (``python -m benchmarks --only bridge``):

* ``jax.dlpack.from_dlpack`` spends most of its time in ``jnp.asarray`` (dtype
  canonicalisation, a no-op for the dtypes admitted here) and in a device/stream lookup;
  the CPU import itself is ``_jax.dlpack_managed_tensor_to_buffer``. It is a private
  jaxlib function, so it is looked up once, used only when its signature is the one this was
  written against (jaxlib extension >= 467), and otherwise the public function is used.
* ``jax.Array.__dlpack__`` spends several times longer in Python than jaxlib's exporter
  ``_jax.buffer_to_dlpack_managed_tensor`` it wraps, also called directly (same guard);
* ``torch.Tensor.__dlpack__`` spends most of its time in Python argument handling;
  ``torch.utils.dlpack.to_dlpack`` makes the same (legacy, unversioned) capsule directly.
  ONNX Runtime's ``OrtValue.from_dlpack`` accepts that capsule directly (public API).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import onnxruntime as ort
import torch
from torch.utils.dlpack import from_dlpack as _torch_from_capsule
from torch.utils.dlpack import to_dlpack as _torch_capsule

from interop._src import dtypes as _dt
from interop._src.arrays import ALIGNMENT

_KDLCPU = 1

try:  # private, but the only way around the public wrapper's cost; see the docstring
    from jax._src.array import ArrayImpl as JAX_ARRAY
    from jax._src.lib import _jax as _jaxlib
    from jax._src.lib import jaxlib_extension_version as _JAXLIB_EXT

    _TO_BUFFER = _jaxlib.dlpack_managed_tensor_to_buffer if _JAXLIB_EXT >= 467 else None
    _TO_CAPSULE = _jaxlib.buffer_to_dlpack_managed_tensor
except (ImportError, AttributeError):  # pragma: no cover - depends on the jax version
    JAX_ARRAY, _TO_BUFFER, _TO_CAPSULE = jax.Array, None, None

# dtypes every consumer takes as they are, without x64 (64-bit ones are added when it is on)
_TORCH_32 = frozenset(
    {torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.int16, torch.int8}
    | {torch.uint8, torch.bool}
)
_TORCH_64 = _TORCH_32 | {torch.float64, torch.int64}
# torch dtypes NumPy views natively (bfloat16 needs ml_dtypes: general path)
_TORCH_NUMPY = (_TORCH_64 - {torch.bfloat16}) | {torch.complex64, torch.complex128}
_NUMPY_32 = frozenset(np.dtype(n) for n in ("float32", "float16", "int32", "int16", "int8"))
_NUMPY_32 |= {np.dtype("uint8"), np.dtype("bool")}
_NUMPY_64 = _NUMPY_32 | {np.dtype("float64"), np.dtype("int64")}
_JAX_ORT = _dt.ORT_SUPPORTED
_JAX_32 = frozenset(_dt.TORCH_TO_NAME[d] for d in _TORCH_32)
_JAX_64 = frozenset(_dt.TORCH_TO_NAME[d] for d in _TORCH_64)
#: the exact types the fast path knows (a pytree of one of these is just that leaf)
LEAF_TYPES = frozenset({torch.Tensor, np.ndarray, JAX_ARRAY, ort.OrtValue})

# ONNX Runtime's C-level OrtValue (what ``run_with_ort_values`` returns): same methods
_ORT_C = type(ort.OrtValue.ortvalue_from_numpy(np.zeros(1, np.float32))._ortvalue)

_cpu_device: Any = None


def _jax_cpu() -> Any:  # looked up on first use: importing interop must not start JAX
    global _cpu_device
    if _cpu_device is None:
        _cpu_device = jax.devices("cpu")[0]
    return _cpu_device


def jax_from_capsule(capsule: Any, owner: Any) -> jax.Array:
    """A JAX CPU array over a CPU DLPack capsule's memory (never a copy).

    ``owner`` (the object the capsule came from) is used only by the public fallback.
    """
    if _TO_BUFFER is None:  # pragma: no cover - depends on the jax version
        return jax.dlpack.from_dlpack(owner, copy=False)
    return _TO_BUFFER(capsule, _jax_cpu(), None, False, _KDLCPU)


def torch_from_jax(a: jax.Array) -> torch.Tensor:
    """A torch CPU tensor over a single-device CPU JAX array's buffer (never a copy).

    ``jax.Array.__dlpack__`` re-derives the device and sharding in Python, which costs more
    than jaxlib's exporter itself; this calls the exporter directly when it exists.
    """
    if _TO_CAPSULE is None:  # pragma: no cover - depends on the jax version
        return torch.from_dlpack(a)
    return _torch_from_capsule(_TO_CAPSULE(a))


def _torch(a: torch.Tensor, target: str) -> Any:
    if not a.is_cpu or a.requires_grad:
        return None
    if target == "torch":
        return a.detach()
    dtype = a.dtype
    if target == "numpy":
        return a.numpy() if dtype in _TORCH_NUMPY else None
    if not a.is_contiguous() or a.numel() == 0:
        return None
    if target == "jax":
        ok = _TORCH_64 if jax.config.jax_enable_x64 else _TORCH_32
        if dtype not in ok or a.data_ptr() % ALIGNMENT:
            return None
        return jax_from_capsule(_torch_capsule(a), a)
    if dtype not in _TORCH_64:  # ort
        return None
    return ort.OrtValue.from_dlpack(_torch_capsule(a))


def _numpy(a: np.ndarray, target: str) -> Any:
    if target == "numpy":
        return a
    flags = a.flags
    if not (flags.writeable and flags.c_contiguous) or a.size == 0:
        return None
    dtype = a.dtype
    if target == "torch":
        return torch.from_numpy(a) if dtype in _NUMPY_64 else None
    if target == "jax":
        ok = _NUMPY_64 if jax.config.jax_enable_x64 else _NUMPY_32
        if dtype not in ok or a.ctypes.data % ALIGNMENT:
            return None
        return jax_from_capsule(a.__dlpack__(), a)
    if dtype not in _NUMPY_64:  # ort
        return None
    return ort.OrtValue.from_dlpack(a.__dlpack__())


def _jax(a: Any, target: str) -> Any:
    if type(a) is not JAX_ARRAY:  # tracers, subclasses: general path
        return None
    devices = a.devices()
    if len(devices) != 1 or next(iter(devices)).platform != "cpu":
        return None
    if target == "jax":
        return a
    if target == "numpy":
        return np.asarray(a)  # read-only view: JAX arrays are immutable
    if target == "torch":
        return torch_from_jax(a)
    if a.dtype.name not in _JAX_ORT or a.size == 0:  # ort
        return None
    a.block_until_ready()  # ONNX Runtime reads the memory without waiting on JAX
    return ort.OrtValue.from_dlpack(a.__dlpack__())


def _ort(a: Any, target: str) -> Any:
    if a.device_name().lower() != "cpu":
        return None
    if target == "ort":
        return a
    if target == "jax":
        name = _dt.ORT_TO_NAME.get(a.data_type())
        ok = _JAX_64 if jax.config.jax_enable_x64 else _JAX_32
        if name not in ok or a.data_ptr() % ALIGNMENT or 0 in a.shape():
            return None
        return jax_from_capsule(a.__dlpack__(), a)
    t = _torch_from_capsule(a.__dlpack__())  # cheaper than torch.from_dlpack(a)
    if target == "torch":
        return t
    return t.numpy() if t.dtype in _TORCH_NUMPY else None


def share(a: Any, target: str) -> Any:
    """``a`` handed to ``target`` without a copy when it is a common easy case, else ``None``.

    Only for ``copy=None`` / ``copy=False`` and no explicit device (the caller checks): every
    case admitted here shares memory, so it honours both.
    """
    kind = type(a)
    if kind is torch.Tensor or kind is torch.nn.Parameter:
        return _torch(a, target)
    if kind is np.ndarray:
        return _numpy(a, target)
    if kind is ort.OrtValue or kind is _ORT_C:
        return _ort(a, target)
    return _jax(a, target)
