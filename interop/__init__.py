"""DLPack bridge between torch, JAX, NumPy and ONNX Runtime, and JAX-callable backbones."""

from interop._src.arrays import data_ptr
from interop._src.bridge import copy_reason, to_jax, to_numpy, to_ortvalue, to_torch
from interop._src.jax_function import jax_function, jax_params

__all__ = [
    "copy_reason",
    "data_ptr",
    "jax_function",
    "jax_params",
    "to_jax",
    "to_numpy",
    "to_ortvalue",
    "to_torch",
]
