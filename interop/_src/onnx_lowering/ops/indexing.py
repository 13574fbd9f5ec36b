"""Indexing and rearranging: ``Pad``, ``GatherElements``, ``GatherND``, ``DepthToSpace`` /
``SpaceToDepth``, ``Trilu``, ``TopK``, ``OneHot``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from interop._src.onnx_lowering.ops._common import ints, norm_axes
from interop._src.onnx_lowering.registry import onnx_op

_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "edge", "wrap": "wrap"}


@onnx_op("Pad", static=(1, 3), mode="constant")
def pad(node, x, pads, value=None, axes=None):
    p = ints(pads)
    ax = norm_axes(ints(axes), x.ndim) if axes is not None else list(range(x.ndim))
    n = len(ax)
    widths = [(0, 0)] * x.ndim
    for i, a in enumerate(ax):
        widths[a] = (p[i], p[i + n])
    # negative pads crop
    crop = tuple(slice(-b if b < 0 else None, e if e < 0 else None) for b, e in widths)
    widths = [(max(b, 0), max(e, 0)) for b, e in widths]
    mode = _PAD_MODES[node["mode"]]
    if mode == "constant":
        fill = 0 if value is None or jnp.size(value) == 0 else jnp.reshape(value, ())
        y = jnp.pad(x, widths, constant_values=fill)
    else:
        y = jnp.pad(x, widths, mode=mode)
    return y[crop]


@onnx_op("GatherElements", axis=0)
def gather_elements(node, x, indices):
    axis = node["axis"]
    idx = jnp.where(indices < 0, indices + x.shape[axis], indices)
    return jnp.take_along_axis(x, idx, axis=axis)


@onnx_op("GatherND", batch_dims=0)
def gather_nd(node, x, indices):
    b = node["batch_dims"]
    k = indices.shape[-1]

    def one(xb, ib):
        ib = jnp.where(ib < 0, ib + jnp.array(xb.shape[:k]), ib)
        return xb[tuple(jnp.moveaxis(ib, -1, 0))]

    fn = one
    for _ in range(b):
        fn = jax.vmap(fn)
    return fn(x, indices)


@onnx_op("DepthToSpace", blocksize=None, mode="DCR")
def depth_to_space(node, x):
    n, c, h, w = x.shape
    b = node["blocksize"]
    if node["mode"] == "DCR":
        y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    else:
        y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return y.reshape(n, c // (b * b), h * b, w * b)


@onnx_op("SpaceToDepth", blocksize=None, mode="DCR")
def space_to_depth(node, x):
    n, c, h, w = x.shape
    b = node["blocksize"]
    y = x.reshape(n, c, h // b, b, w // b, b)
    y = y.transpose(0, 1, 3, 5, 2, 4) if node["mode"] == "CRD" else y.transpose(0, 3, 5, 1, 2, 4)
    return y.reshape(n, c * b * b, h // b, w // b)


@onnx_op("Trilu", static=(1,), upper=1)
def trilu(node, x, k=None):
    kk = ints(k)[0] if k is not None else 0
    return jnp.triu(x, kk) if node["upper"] else jnp.tril(x, kk)


@onnx_op("TopK", static=(1,), axis=-1, largest=1, sorted=1)
def topk(node, x, k):
    (kk,) = ints(k)
    axis = node["axis"] + x.ndim if node["axis"] < 0 else node["axis"]
    moved = jnp.moveaxis(x, axis, -1)
    values, idx = lax.top_k(moved if node["largest"] else -moved, kk)
    values = values if node["largest"] else -values
    return jnp.moveaxis(values, -1, axis), jnp.moveaxis(idx, -1, axis)


@onnx_op("OneHot", static=(1,), axis=-1)
def one_hot(node, indices, depth, values):
    (d,) = [int(v) for v in jnp.asarray(depth).reshape(-1)]
    idx = jnp.where(indices < 0, indices + d, indices)
    hot = jax.nn.one_hot(idx, d, axis=node["axis"], dtype=bool)
    return jnp.where(hot, values[1], values[0])
