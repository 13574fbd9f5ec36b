"""The bridge's fast path: which cases it takes, and that it agrees with the general path.

The general path is checked exhaustively by test_bridge.py (which now runs through the fast
path for every easy case); here each easy case is shown to *be* taken by the fast path, with
the pointer and values of the public, slow consumer import, and each hazard to be declined.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import onnxruntime as ort
import pytest
import torch

import interop
from interop._src import fast
from interop._src.bridge import aligned_empty


def _aligned(values: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    out = aligned_empty(values.shape, dtype)
    out.copy_(torch.from_numpy(values))
    return out


def _torch_src(dtype: torch.dtype) -> torch.Tensor:
    values = np.random.default_rng(0).integers(-3, 4, size=(4, 6))
    return _aligned(values > 0 if dtype == torch.bool else values, dtype)


def _reference(y: object) -> np.ndarray:
    if isinstance(y, ort.OrtValue):
        y = torch.from_dlpack(y)
    if isinstance(y, torch.Tensor):
        return y.to(torch.float64).numpy()
    return np.asarray(y).astype(np.float64)


def _public(a: object, target: str) -> object:
    """The same conversion through each consumer's public DLPack import (the slow way)."""
    if target == "jax":
        return jax.dlpack.from_dlpack(a, copy=False)
    if target == "torch":
        return torch.from_dlpack(a)
    if target == "ort":
        return ort.OrtValue.from_dlpack(a)
    return np.from_dlpack(a)


EASY_DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.uint8, torch.bool]


def test_private_jax_import_is_available() -> None:
    # If a jax upgrade changes the private import, the bridge falls back to the public one
    # (correct, ~10x slower per call): this test says so instead of a silent slowdown.
    assert fast._TO_BUFFER is not None, "jaxlib's dlpack_managed_tensor_to_buffer moved"


@pytest.mark.parametrize("target", ["jax", "torch", "ort", "numpy"])
@pytest.mark.parametrize("dtype", EASY_DTYPES, ids=str)
def test_torch_easy_cases_take_the_fast_path(dtype: torch.dtype, target: str) -> None:
    t = _torch_src(dtype)
    y = fast.share(t, target)
    if target == "numpy" and dtype == torch.bfloat16:
        assert y is None  # NumPy needs ml_dtypes' bfloat16: the general path
        return
    assert y is not None
    want = _public(t, target)
    assert interop.data_ptr(y) == interop.data_ptr(want) == t.data_ptr()
    np.testing.assert_array_equal(_reference(y), _reference(want))


@pytest.mark.parametrize("target", ["jax", "torch", "ort", "numpy"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "int32", "uint8", "bool"])
def test_numpy_easy_cases_take_the_fast_path(dtype: str, target: str) -> None:
    n = _torch_src(getattr(torch, dtype)).numpy()
    y = fast.share(n, target)
    assert y is not None
    assert interop.data_ptr(y) == n.ctypes.data
    np.testing.assert_array_equal(_reference(y), n.astype(np.float64))


@pytest.mark.parametrize("target", ["jax", "torch", "ort", "numpy"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "int32", "bool"])
def test_jax_easy_cases_take_the_fast_path(dtype: str, target: str) -> None:
    j = jnp.arange(24).reshape(4, 6).astype(dtype)
    y = fast.share(j, target)
    assert y is not None
    assert interop.data_ptr(y) == j.unsafe_buffer_pointer()
    np.testing.assert_array_equal(_reference(y), np.asarray(j).astype(np.float64))


@pytest.mark.parametrize("target", ["jax", "torch", "ort", "numpy"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.int32, torch.bool], ids=str)
def test_ortvalue_easy_cases_take_the_fast_path(dtype: torch.dtype, target: str) -> None:
    t = _torch_src(dtype)
    v = ort.OrtValue.from_dlpack(t)
    y = fast.share(v, target)
    assert y is not None
    assert interop.data_ptr(y) == t.data_ptr()
    np.testing.assert_array_equal(_reference(y), _reference(t))


def _hazards() -> dict[str, tuple[object, str]]:
    t = _torch_src(torch.float32)
    ro = _torch_src(torch.float32).numpy()
    ro.flags.writeable = False
    grad = _torch_src(torch.float32).requires_grad_(True)
    return {
        "strided torch -> jax": (t[:, ::2], "jax"),
        "transposed torch -> ort": (t.T, "ort"),
        "unaligned torch -> jax": (t.reshape(-1)[1:], "jax"),
        "int64 torch -> jax without x64": (torch.arange(8), "jax"),
        "requires_grad torch -> jax": (grad, "jax"),
        "empty torch -> jax": (aligned_empty((0, 3), torch.float32), "jax"),
        "read-only numpy -> torch": (ro, "torch"),
        "read-only numpy -> jax": (ro, "jax"),
        "negative-stride numpy -> jax": (t.numpy()[0, ::-1], "jax"),
        "unaligned ortvalue -> jax": (ort.OrtValue.from_dlpack(t.reshape(-1)[1:]), "jax"),
        "bfloat16 ortvalue -> numpy": (
            ort.OrtValue.from_dlpack(_torch_src(torch.bfloat16)),
            "numpy",
        ),
    }


@pytest.mark.parametrize("case", list(_hazards()))
def test_hazards_take_the_general_path(case: str) -> None:
    a, target = _hazards()[case]
    assert fast.share(a, target) is None


def test_tracers_take_the_general_path() -> None:
    seen = []

    def f(x: jax.Array) -> jax.Array:
        seen.append(fast.share(x, "jax"))
        return x

    jax.jit(f)(jnp.ones(3))
    assert seen == [None]


def test_single_array_skips_the_pytree_walk_but_not_its_errors() -> None:
    t = _torch_src(torch.float32)
    assert interop.data_ptr(interop.to_jax(t, copy=False)) == t.data_ptr()
    with pytest.raises(TypeError, match="at the input"):
        interop.to_jax(3.0)
