"""Normalisation through the torch lowering's functions (``interop/_src/lowering/ops/norms.py``:
float32 statistics for low-precision inputs, the same formulas)."""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from interop._src.lowering.ops.norms import batch_norm_eval, native_group_norm, native_layer_norm
from interop._src.onnx_lowering.registry import onnx_op


def _bn_refusal(attrs, n_outputs):
    if attrs["training_mode"] or n_outputs > 1:
        return "BatchNormalization in training mode (batch statistics, updated running ones)"
    return None


@onnx_op("BatchNormalization", refuses=_bn_refusal, epsilon=1e-5, momentum=0.9, training_mode=0)
def batch_normalization(node, x, scale, bias, mean, var):
    y, _, _ = batch_norm_eval(x, scale, bias, mean, var, 0.0, node["epsilon"])
    return y


@onnx_op("LayerNormalization", axis=-1, epsilon=1e-5, stash_type=1)
def layer_normalization(node, x, scale, bias=None):
    axis = node["axis"] + x.ndim if node["axis"] < 0 else node["axis"]
    y, mean, rstd = native_layer_norm(x, x.shape[axis:], scale, bias, node["epsilon"])
    return (y, mean, rstd)[: max(node.n_outputs, 1)]


@onnx_op("GroupNormalization", epsilon=1e-5, num_groups=None, stash_type=1)
def group_normalization(node, x, scale, bias):
    g, c = node["num_groups"], x.shape[1]
    if scale.shape[0] != c:  # opset 18: one scale and bias per group
        scale, bias = jnp.repeat(scale, c // g), jnp.repeat(bias, c // g)
    hxw = 1
    for d in x.shape[2:]:
        hxw *= d
    y, _, _ = native_group_norm(x, scale, bias, x.shape[0], c, hxw, g, node["epsilon"])
    return y


@onnx_op("InstanceNormalization", epsilon=1e-5)
def instance_normalization(node, x, scale, bias):
    axes = tuple(range(2, x.ndim))
    mu = jnp.mean(x, axis=axes, keepdims=True)
    var = jnp.mean(jnp.square(x - mu), axis=axes, keepdims=True)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = (x - mu) * lax.rsqrt(var + node["epsilon"])
    return y * scale.reshape(shape) + bias.reshape(shape)


@onnx_op("LpNormalization", axis=-1, p=2)
def lp_normalization(node, x):
    a = jnp.abs(x)
    norm = (
        jnp.sum(a, node["axis"], keepdims=True)
        if node["p"] == 1
        else jnp.sqrt(jnp.sum(a * a, node["axis"], keepdims=True))
    )
    return jnp.where(norm == 0, 0, x / jnp.where(norm == 0, 1, norm)).astype(x.dtype)


@onnx_op("MeanVarianceNormalization", axes=(0, 2, 3))
def mean_variance_normalization(node, x):
    axes = tuple(node["axes"])
    mu = jnp.mean(x, axis=axes, keepdims=True)
    std = jnp.sqrt(jnp.mean(jnp.square(x - mu), axis=axes, keepdims=True))
    return (x - mu) / (std + 1e-9)
