"""DLPack bridge (torch, JAX, NumPy, ONNX Runtime), JAX-callable backbones, torch -> JAX
lowering."""

from interop import lowering as lowering
from interop._src.arrays import data_ptr
from interop._src.bridge import copy_reason, to_jax, to_numpy, to_ortvalue, to_torch
from interop._src.jax_function import jax_function, jax_params
from interop._src.params import load_params
from interop.lowering import LoweringError, lower

__all__ = [
    "LoweringError",
    "copy_reason",
    "data_ptr",
    "jax_function",
    "jax_params",
    "load_params",
    "lower",
    "to_jax",
    "to_numpy",
    "to_ortvalue",
    "to_torch",
]
