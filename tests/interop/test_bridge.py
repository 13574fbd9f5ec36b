"""The bridge over a table: sources x dtypes x layouts x targets x copy modes.

Whether memory can be shared is decided here by an independent oracle (what each consumer
accepts), then checked against real pointers, values and errors.
"""

from __future__ import annotations

import itertools

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import onnxruntime as ort
import pytest
import torch
from hypothesis import given, settings

import interop

DTYPES = {
    "float32": (torch.float32, np.float32),
    "float16": (torch.float16, np.float16),
    "bfloat16": (torch.bfloat16, ml_dtypes.bfloat16),
    "bool": (torch.bool, np.bool_),
    "int32": (torch.int32, np.int32),
}
# layout -> (which source kinds can hold it, shape)
LAYOUTS = {
    "contiguous": ("torch jax numpy ort", (3, 5)),
    "transposed": ("torch numpy", (3, 5)),
    "strided": ("torch numpy", (3, 5)),
    "unaligned": ("torch numpy", (7,)),
    "readonly": ("numpy", (3, 5)),
    "negative": ("numpy", (6,)),
    "0d": ("torch jax numpy ort", ()),
    "empty": ("torch jax numpy ort", (0, 4)),
}
TARGETS = {
    "jax": interop.to_jax,
    "torch": interop.to_torch,
    "numpy": interop.to_numpy,
    "ort": interop.to_ortvalue,
}


def reference(dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(0)
    values = rng.integers(-4, 5, size=shape).astype(np.float64)
    return values > 0 if dtype == "bool" else values


def aligned(t: torch.Tensor) -> torch.Tensor:
    """A C-contiguous copy of ``t`` at a 64-byte aligned address (torch does not promise one)."""
    raw = torch.empty(t.numel() * t.element_size() + 64, dtype=torch.uint8)
    off = -raw.data_ptr() % 64
    out = raw[off : off + t.numel() * t.element_size()].view(t.dtype).view(t.shape)
    out.copy_(t)
    return out


def make_source(kind: str, dtype: str, layout: str) -> tuple[object, np.ndarray]:
    """The source array and the float64 values it must hold."""
    tdt, ndt = DTYPES[dtype]
    shape = LAYOUTS[layout][1]
    if layout == "transposed":
        ref = reference(dtype, shape[::-1]).T
        base = aligned(torch.from_numpy(np.ascontiguousarray(ref.T)).to(tdt))
        t = base.T
    elif layout == "strided":
        big = reference(dtype, (shape[0], shape[1] * 2))
        ref = big[:, ::2]
        t = torch.from_numpy(big).to(tdt)[:, ::2]
    elif layout == "unaligned":
        big = reference(dtype, (shape[0] + 1,))
        ref = big[1:]
        t = aligned(torch.from_numpy(big).to(tdt))[1:]
    else:
        ref = reference(dtype, shape)
        t = aligned(torch.from_numpy(np.array(ref)).to(tdt))
    if kind == "torch":
        return t, ref.astype(np.float64)
    if kind == "jax":
        return jnp.asarray(np.asarray(t.float()), dtype=np.dtype(ndt)), ref.astype(np.float64)
    if kind == "ort":
        return ort.OrtValue.from_dlpack(aligned(t)), ref.astype(np.float64)
    # numpy: build the layout in numpy itself
    flat = aligned(torch.from_numpy(reference(dtype, (64,))).to(tdt))
    flat = flat.view(torch.int16).numpy().view(ndt) if dtype == "bfloat16" else flat.numpy()
    if layout == "unaligned":
        arr = flat[1 : 1 + shape[0]]
    elif layout == "negative":
        arr = flat[: shape[0]][::-1]
    elif layout == "transposed":
        arr = flat[:15].reshape(5, 3).T
    elif layout == "strided":
        arr = flat[:30].reshape(3, 10)[:, ::2]
    else:
        arr = flat[: int(np.prod(shape))].reshape(shape)
        if layout == "readonly":
            arr.flags.writeable = False
    return arr, np.asarray(arr, dtype=np.float64)


def can_share(kind: str, layout: str, target: str) -> bool:
    """The oracle: what each consumer accepts without a copy."""
    if target == "jax":
        return layout not in ("strided", "unaligned", "negative")
    if target == "torch":
        return not (kind == "numpy" and layout in ("readonly", "negative"))
    if target == "ort":
        return layout not in ("transposed", "strided", "negative")
    return True  # numpy takes any host memory and stride


def as_float64(y: object) -> np.ndarray:
    """Values of any result, read through its own framework."""
    if isinstance(y, ort.OrtValue):
        y = torch.from_dlpack(y)
    if isinstance(y, torch.Tensor):
        return y.detach().to(torch.float64).numpy()
    return np.asarray(y).astype(np.float64)


def result_dtype(y: object) -> str:
    if isinstance(y, torch.Tensor):
        return str(y.dtype).removeprefix("torch.")
    if isinstance(y, ort.OrtValue):
        return str(torch.from_dlpack(y).dtype).removeprefix("torch.")
    return np.dtype(y.dtype).name


CASES = [
    (kind, dtype, layout, target, copy)
    for layout, (kinds, _) in LAYOUTS.items()
    for kind in kinds.split()
    for dtype in DTYPES
    for target in TARGETS
    for copy in (True, False, None)
]


@pytest.mark.parametrize(("kind", "dtype", "layout", "target", "copy"), CASES)
def test_bridge_table(kind: str, dtype: str, layout: str, target: str, copy: bool | None) -> None:
    src, ref = make_source(kind, dtype, layout)
    share = can_share(kind, layout, target)
    if copy is False and not share:
        with pytest.raises(BufferError, match=r"copy=False.*because"):
            TARGETS[target](src, copy=False)
        return
    y = TARGETS[target](src, copy=copy)
    np.testing.assert_array_equal(as_float64(y), ref)
    assert tuple(y.shape() if isinstance(y, ort.OrtValue) else y.shape) == ref.shape
    assert result_dtype(y) == dtype
    if ref.size:
        shared = interop.data_ptr(y) == interop.data_ptr(src)
        assert shared == (share and not copy)
    assert (interop.copy_reason(src, target) is None) == share


def test_copy_true_is_really_new_memory_for_jax_on_cpu() -> None:
    # jax.dlpack.from_dlpack(copy=True) shares on the CPU in jax 0.10; ours must not.
    t = torch.arange(16.0)
    y = interop.to_jax(t, copy=True)
    t.add_(1)
    np.testing.assert_array_equal(np.asarray(y), np.arange(16.0))


def test_shared_memory_mutation_is_visible() -> None:
    # The documented hazard: a shared buffer changes under the consumer.
    t = torch.zeros(16)
    y = interop.to_jax(t)
    t.add_(1)
    np.testing.assert_array_equal(np.asarray(y), np.ones(16))


def test_requires_grad_is_detached_and_shared() -> None:
    w = torch.randn(4, 3, requires_grad=True)
    for target, fn in TARGETS.items():
        y = fn(w, copy=False)
        assert interop.data_ptr(y) == w.data_ptr(), target
    assert interop.to_torch(w).requires_grad is False


_NARROW = {torch.int64: jnp.int32, torch.float64: jnp.float32, torch.complex128: jnp.complex64}


@pytest.mark.parametrize("dtype", list(_NARROW))
def test_64bit_to_jax_is_explicit(dtype: torch.dtype) -> None:
    t = torch.arange(6).to(dtype)
    with pytest.raises(TypeError, match="jax_enable_x64"):
        interop.to_jax(t)
    y = interop.to_jax(t, downcast=True)
    assert y.dtype == _NARROW[dtype]
    np.testing.assert_array_equal(np.asarray(y), np.arange(6))
    with pytest.raises(BufferError, match="narrowing"):
        interop.to_jax(t, copy=False, downcast=True)


def test_downcast_refuses_to_truncate() -> None:
    with pytest.raises(OverflowError, match="do not fit int32"):
        interop.to_jax(torch.tensor([0, 2**40]), downcast=True)


def test_64bit_shared_with_x64_enabled() -> None:
    t = torch.arange(6, dtype=torch.int64)
    with jax.enable_x64(True):
        y = interop.to_jax(t, copy=False)
        assert y.dtype == jnp.int64
        assert interop.data_ptr(y) == t.data_ptr()


def test_ort_refuses_complex() -> None:
    with pytest.raises(TypeError, match="ONNX Runtime has no complex64"):
        interop.to_ortvalue(torch.ones(3, dtype=torch.complex64))


@pytest.mark.parametrize("fn", list(TARGETS.values()))
def test_pytrees_keep_structure_and_share(fn) -> None:
    a, b = torch.randn(2, 3), torch.randn(4)
    out = fn({"a": a, "rest": [b, (a,)]})
    assert set(out) == {"a", "rest"}
    assert interop.data_ptr(out["a"]) == a.data_ptr()
    assert interop.data_ptr(out["rest"][0]) == b.data_ptr()
    assert interop.data_ptr(out["rest"][1][0]) == a.data_ptr()


@pytest.mark.parametrize("bad", [3.0, "x", [torch.ones(2), object()]])
def test_non_arrays_name_where(bad) -> None:
    with pytest.raises(TypeError, match="expected an array"):
        interop.to_jax(bad)


@pytest.mark.parametrize("copy", ["yes", 0, 1])
def test_copy_argument_is_checked(copy) -> None:
    with pytest.raises(TypeError, match="`copy` must be True, False or None"):
        interop.to_torch(torch.ones(2), copy=copy)


def test_foreign_dlpack_objects() -> None:
    class Foreign:
        def __init__(self, t):
            self.t = t

        def __dlpack__(self, **kw):
            return self.t.__dlpack__(**kw)

        def __dlpack_device__(self):
            return self.t.__dlpack_device__()

    t = torch.randn(8)
    for fn in TARGETS.values():
        assert interop.data_ptr(fn(Foreign(t))) == t.data_ptr()


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    data=st.data(),
)
def test_compact_prediction_matches_jax(shape: list[int], data) -> None:
    """copy_reason(..., 'jax') is None exactly when JAX itself imports without copying."""
    perm = data.draw(st.permutations(range(len(shape))))
    step = data.draw(st.sampled_from([1, 2]))
    base = torch.randn(*[n * (step if i == 0 else 1) for i, n in enumerate(shape)])
    t = base[::step].permute(*perm)
    predicted = interop.copy_reason(t, "jax") is None
    try:
        y = jax.dlpack.from_dlpack(t, copy=False)
        actual = y.unsafe_buffer_pointer() == t.data_ptr()
    except Exception:
        actual = False
    assert predicted == actual


def test_iterating_dtypes_covers_the_table() -> None:
    # Guard against the table silently shrinking: every direction is exercised.
    pairs = {(k, t) for k, _, _, t, _ in CASES}
    assert pairs == set(itertools.product(["torch", "jax", "numpy", "ort"], TARGETS))
