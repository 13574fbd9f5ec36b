"""Dtype tables shared by the bridge and the lowering: one framework-neutral name per dtype.

Every array is described by a plain name (``"float32"``, ``"bfloat16"``, ``"bool"``) so that
rules ("JAX without x64 has no int64", "ONNX Runtime has no complex") are written once.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import torch

# torch dtype -> neutral name.
TORCH_TO_NAME: dict[torch.dtype, str] = {
    torch.bool: "bool",
    torch.uint8: "uint8",
    torch.int8: "int8",
    torch.int16: "int16",
    torch.int32: "int32",
    torch.int64: "int64",
    torch.uint16: "uint16",
    torch.uint32: "uint32",
    torch.uint64: "uint64",
    torch.float16: "float16",
    torch.bfloat16: "bfloat16",
    torch.float32: "float32",
    torch.float64: "float64",
    torch.complex64: "complex64",
    torch.complex128: "complex128",
}
NAME_TO_TORCH: dict[str, torch.dtype] = {v: k for k, v in TORCH_TO_NAME.items()}

# ONNX Runtime's ``OrtValue.data_type()`` strings -> neutral name.
ORT_TO_NAME: dict[str, str] = {
    "tensor(bool)": "bool",
    "tensor(uint8)": "uint8",
    "tensor(int8)": "int8",
    "tensor(uint16)": "uint16",
    "tensor(int16)": "int16",
    "tensor(uint32)": "uint32",
    "tensor(int32)": "int32",
    "tensor(uint64)": "uint64",
    "tensor(int64)": "int64",
    "tensor(float16)": "float16",
    "tensor(bfloat16)": "bfloat16",
    "tensor(float)": "float32",
    "tensor(double)": "float64",
}

# Dtypes ONNX Runtime accepts through DLPack (no complex, no strings).
ORT_SUPPORTED: frozenset[str] = frozenset(ORT_TO_NAME.values())

# 64-bit dtypes JAX silently narrows unless ``jax_enable_x64`` is on, and their narrow twins.
X64_NARROW: dict[str, str] = {
    "int64": "int32",
    "uint64": "uint32",
    "float64": "float32",
    "complex128": "complex64",
}

# NumPy has no native bfloat16 and cannot export it through DLPack: it travels as its bits.
NUMPY_BFLOAT16 = np.dtype(ml_dtypes.bfloat16)


def numpy_name(dtype: np.dtype) -> str:
    """Neutral name of a NumPy dtype (``ml_dtypes.bfloat16`` -> ``"bfloat16"``)."""
    return "bfloat16" if dtype == NUMPY_BFLOAT16 else np.dtype(dtype).name


def narrow(name: str) -> str:
    """The dtype name JAX holds ``name`` as: 64-bit ones narrowed unless x64 is on."""
    return name if jax.config.jax_enable_x64 else X64_NARROW.get(name, name)


def jax_dtype(dtype: torch.dtype) -> np.dtype:
    """The JAX dtype of a torch dtype, as JAX holds it (64-bit ones narrowed unless x64 is on).

    Raises:
        TypeError: JAX has no such dtype (``complex32``, the quantized and bit dtypes).
    """
    name = TORCH_TO_NAME.get(dtype)
    if name is None:
        raise TypeError(no_jax_dtype(dtype))
    return jnp.dtype(narrow(name))


def no_jax_dtype(dtype: torch.dtype) -> str:
    """The sentence saying JAX has no ``dtype``, and what to cast to instead."""
    instead = "torch.complex64" if dtype == torch.complex32 else "a dtype JAX has"
    return (
        f"{dtype} has no JAX dtype (JAX has {', '.join(sorted(TORCH_TO_NAME.values()))}); "
        f"cast it to {instead} first"
    )
