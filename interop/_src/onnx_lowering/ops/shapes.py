"""Shape ops: the graph's shape arithmetic (``Shape``, ``Reshape``, ``Concat``, ``Slice``,
``Gather``, ...), written for both array modules (``node.xp``) so that known inputs fold in
NumPy (int64 bounds and symbolic sizes intact) and traced ones run in ``jax.numpy``."""

from __future__ import annotations

import numpy as np

from interop._src.onnx_lowering.errors import OnnxLoweringError
from interop._src.onnx_lowering.ops._common import cast_dtype, dims, ints, norm_axes
from interop._src.onnx_lowering.registry import onnx_op


@onnx_op("Shape", fold="shape", start=0, end=None)
def shape(node, x):
    s = list(x.shape)
    end = node["end"] if node["end"] is not None else len(s)
    sizes = s[node["start"] : end]
    if all(isinstance(d, int) for d in sizes):
        return np.array(sizes, np.int64)
    return np.array(sizes, object)


@onnx_op("Size", fold="shape")
def size(node, x):
    n = 1
    for d in x.shape:
        n = n * d
    return np.array(n, np.int64 if isinstance(n, int) else object)


@onnx_op("Reshape", static=(1,), fold="numpy", allowzero=0)
def reshape(node, x, shape):
    target = list(dims(shape))
    if not node["allowzero"]:
        target = [
            x.shape[i] if (isinstance(d, int) and d == 0) else d for i, d in enumerate(target)
        ]
    return node.xp.reshape(x, _infer(target, x.shape))


def _infer(target: list, shape: tuple) -> tuple:
    """``-1`` resolved here (NumPy cannot with a symbolic size in the shape)."""
    if not any(isinstance(d, int) and d == -1 for d in target):
        return tuple(target)
    total = 1
    for d in shape:
        total = total * d
    rest = 1
    for d in target:
        if not (isinstance(d, int) and d == -1):
            rest = rest * d
    return tuple(total // rest if (isinstance(d, int) and d == -1) else d for d in target)


@onnx_op("Flatten", fold="numpy", axis=1)
def flatten(node, x):
    axis = node["axis"] + x.ndim if node["axis"] < 0 else node["axis"]
    lead = 1
    for d in x.shape[:axis]:
        lead = lead * d
    return node.xp.reshape(x, _infer([lead, -1], x.shape))


@onnx_op("Transpose", fold="numpy", perm=None)
def transpose(node, x):
    perm = node["perm"] if node["perm"] is not None else list(range(x.ndim))[::-1]
    return node.xp.transpose(x, perm)


@onnx_op("Concat", fold="numpy")
def concat(node, *xs):
    xs = [x for x in xs if x is not None]
    return node.xp.concatenate(xs, axis=node["axis"])


@onnx_op("Unsqueeze", static=(1,), fold="numpy")
def unsqueeze(node, x, axes):
    rank = x.ndim + len(ints(axes))
    for a in sorted(norm_axes(ints(axes), rank)):
        x = node.xp.expand_dims(x, a)
    return x


@onnx_op("Squeeze", static=(1,), fold="numpy")
def squeeze(node, x, axes=None):
    if axes is None:
        return node.xp.squeeze(x)
    return node.xp.squeeze(x, axis=tuple(norm_axes(ints(axes), x.ndim)))


@onnx_op("Slice", static=(1, 2, 3, 4), fold="numpy")
def slice_(node, x, starts, ends, axes=None, steps=None):
    axes = norm_axes(ints(axes) if axes is not None else list(range(len(ints(starts)))), x.ndim)
    steps = ints(steps) if steps is not None else [1] * len(axes)
    index = [slice(None)] * x.ndim
    for a, s, e, st in zip(axes, ints(starts), ints(ends), steps, strict=True):
        n = x.shape[a]
        if isinstance(n, int):
            s, e = _bounds(s, e, st, n)
        index[a] = slice(s, e, st)
    return x[tuple(index)]


def _bounds(s: int, e: int, step: int, n: int) -> tuple[int | None, int | None]:
    """ONNX's clamping of slice bounds (INT64 extremes included) as Python slice bounds."""
    s = s + n if s < 0 else s
    e = e + n if e < 0 else e
    if step > 0:
        return min(max(s, 0), n), min(max(e, 0), n)
    s = min(max(s, -1), n - 1)
    e = min(max(e, -1), n - 1)
    return s, (None if e < 0 else e)


@onnx_op("Gather", fold="numpy", axis=0)
def gather(node, x, indices):
    axis = node["axis"] + x.ndim if node["axis"] < 0 else node["axis"]
    n = x.shape[axis]
    idx = node.xp.where(indices < 0, indices + n, indices)
    return node.xp.take(x, idx, axis=axis)


@onnx_op("Expand", static=(1,), fold="numpy")
def expand(node, x, shape):
    target = dims(shape)
    rank = max(len(target), x.ndim)
    have = (1,) * (rank - x.ndim) + tuple(x.shape)
    want = (1,) * (rank - len(target)) + tuple(target)
    out = tuple(
        h if (isinstance(w, int) and w == 1) else w for h, w in zip(have, want, strict=True)
    )
    return node.xp.broadcast_to(node.xp.reshape(x, have), out)


@onnx_op("Tile", static=(1,), fold="numpy")
def tile(node, x, repeats):
    return node.xp.tile(x, ints(repeats))


@onnx_op("Split", static=(1,), fold="numpy", axis=0, num_outputs=None)
def split(node, x, sizes=None):
    axis = node["axis"] + x.ndim if node["axis"] < 0 else node["axis"]
    n = x.shape[axis]
    if sizes is None:
        parts = node.n_outputs if node["num_outputs"] is None else node["num_outputs"]
        each = -(-n // parts)
        sizes = [min(each, n - i * each) for i in range(parts)]
    else:
        sizes = ints(sizes)
    cuts = np.cumsum(sizes)[:-1].tolist()
    return tuple(node.xp.split(x, cuts, axis=axis))


@onnx_op("Identity", fold="numpy")
def identity(node, x):
    return x


@onnx_op("Cast", fold="numpy", saturate=1, round_mode="up")
def cast(node, x):
    if x.dtype == object:  # a shape holding a symbolic size stays as it is
        return x
    return x.astype(cast_dtype(node.xp, node["to"]))


@onnx_op("CastLike", fold="numpy", saturate=1, round_mode="up")
def cast_like(node, x, like):
    return x.astype(like.dtype)


@onnx_op("Constant", fold="numpy")
def constant(node):
    ((key, value),) = ((k, v) for k, v in node.attrs.items())
    if key in ("value", "sparse_value"):
        return np.asarray(value)
    dtype = {"value_float": np.float32, "value_floats": np.float32}.get(key, np.int64)
    return np.asarray(value, dtype)


@onnx_op("ConstantOfShape", static=(0,), fold="numpy", value=None)
def constant_of_shape(node, shape):
    value = node["value"] if node["value"] is not None else np.zeros(1, np.float32)
    target = dims(shape)
    if all(isinstance(d, int) for d in target):
        return np.full(target, value.reshape(()), value.dtype)
    import jax.numpy as jnp  # a symbolic size: the array is JAX's

    return jnp.full(target, value.reshape(()), value.dtype)


@onnx_op("Range", static=(0, 1, 2), fold="numpy")
def range_(node, start, limit, delta):
    return np.arange(start.item(), limit.item(), delta.item()).astype(start.dtype)


@onnx_op("Dropout", fold="numpy", seed=None)
def dropout(node, x, ratio=None, training_mode=None):
    if training_mode is not None and (
        not isinstance(training_mode, np.ndarray) or bool(training_mode)
    ):
        raise OnnxLoweringError(
            f"node {node.name!r} (Dropout): training_mode is not a constant False; dropout in "
            "training draws at random, which forward(params, x) has no key for"
        )
    return (x, node.xp.ones(x.shape, bool)) if node.n_outputs > 1 else x
