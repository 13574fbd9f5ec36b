"""What the ONNX op families share: dtypes as JAX holds them, axes, known integer inputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from onnx import helper


def np_dtype(onnx_type: int) -> np.dtype:
    """The NumPy dtype of an ONNX element type (``TensorProto.FLOAT`` -> float32)."""
    return np.dtype(helper.tensor_dtype_to_np_dtype(onnx_type))


def cast_dtype(xp: Any, onnx_type: int) -> np.dtype:
    """The dtype a cast goes to: the ONNX type's NumPy dtype, 64-bit narrowed for JAX without
    x64 (JAX's own canonical dtype, so no warning)."""
    dtype = np_dtype(onnx_type)
    return dtype if xp is np else jax.dtypes.canonicalize_dtype(dtype)


def ints(v: Any) -> list[int]:
    """A known 1-D integer input (axes, pads, repeats) as Python ints."""
    return [int(i) for i in np.asarray(v).reshape(-1)]


def norm_axes(axes: Sequence[int], rank: int) -> list[int]:
    """Negative axes counted from the end."""
    return [a + rank if a < 0 else a for a in axes]


def dims(v: Any) -> tuple[Any, ...]:
    """A known shape input as sizes (ints, or symbolic sizes under ``jax.export``)."""
    return tuple(
        d if not isinstance(d, (np.integer, int)) else int(d) for d in np.asarray(v).reshape(-1)
    )


def is_int(x: Any) -> bool:
    return np.issubdtype(x.dtype, np.integer)
