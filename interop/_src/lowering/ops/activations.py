"""Activation functions and the softmaxes (computed in float32 for low-precision inputs)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

from interop._src.lowering.ops._helpers import up
from interop._src.lowering.ops.registry import op

_SQRT1_2 = 1.0 / math.sqrt(2.0)


@op("aten.relu.default")
def relu(x):
    return jnp.maximum(x, jnp.zeros((), x.dtype))


@op("aten.gelu.default")
def gelu(x, approximate="none"):
    xf = up(x)
    if approximate == "tanh":
        return jax.nn.gelu(xf, approximate=True).astype(x.dtype)
    # torch's own form, 0.5 x (1 + erf(x / sqrt 2)), not jax.nn.gelu's erfc one: XLA's CPU erf
    # is the faster of the two (lowering README, design notes), and the same formula rounds
    # like torch where 1 + erf cancels (x < -5: both give 0, not 1e-7 of x)
    return (0.5 * xf * (1.0 + lax.erf(xf * _SQRT1_2))).astype(x.dtype)


@op("aten.sigmoid.default")
def sigmoid(x):
    return jax.nn.sigmoid(x)


@op("aten.silu.default")
def silu(x):
    return x * jax.nn.sigmoid(x)


@op("aten.hardtanh.default")
def hardtanh(x, min_val=-1.0, max_val=1.0):
    return jnp.clip(x, min_val, max_val)


@op("aten.hardsigmoid.default")
def hardsigmoid(x):
    return jnp.clip(x / 6 + 0.5, 0, 1)


@op("aten.hardswish.default")
def hardswish(x):
    return x * jnp.clip(x / 6 + 0.5, 0, 1)


@op("aten.leaky_relu.default")
def leaky_relu(x, negative_slope=0.01):
    return jnp.where(x > 0, x, x * negative_slope)


@op("aten.elu.default")
def elu(x, alpha=1.0, scale=1.0, input_scale=1.0):
    return scale * jnp.where(x > 0, x, alpha * jnp.expm1(x * input_scale))


@op("aten.softplus.default")
def softplus(x, beta=1.0, threshold=20.0):
    bx = x * beta
    return jnp.where(bx > threshold, x, jnp.log1p(jnp.exp(jnp.minimum(bx, threshold))) / beta)


@op("aten._softmax.default")
def softmax(x, dim, half_to_float=False):
    return jax.nn.softmax(up(x), axis=dim).astype(jnp.float32 if half_to_float else x.dtype)


@op("aten._log_softmax.default")
def log_softmax(x, dim, half_to_float=False):
    return jax.nn.log_softmax(up(x), axis=dim).astype(jnp.float32 if half_to_float else x.dtype)
