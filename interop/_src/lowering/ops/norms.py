"""Normalisation layers: layer norm, group norm, batch norm (running or batch statistics, and
train mode updating the running ones), in float32 for low-precision inputs; each returns
ATen's saved statistics too."""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from interop._src.lowering.ops._helpers import up
from interop._src.lowering.ops.registry import op


def _affine(y, weight, bias, shape=None):
    """A norm's optional ``* weight + bias``, reshaped to ``shape`` (channels on axis 1) if
    given."""
    if weight is not None:
        y = y * (weight if shape is None else weight.reshape(shape))
    if bias is not None:
        y = y + (bias if shape is None else bias.reshape(shape))
    return y


@op("aten.native_layer_norm.default")
def native_layer_norm(x, normalized_shape, weight, bias, eps):
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    xf = up(x)
    mu = jnp.mean(xf, axis=axes, keepdims=True)
    rstd = lax.rsqrt(jnp.mean(jnp.square(xf - mu), axis=axes, keepdims=True) + eps)
    y = _affine((xf - mu) * rstd, weight, bias)
    return y.astype(x.dtype), mu, rstd


@op("aten.native_group_norm.default")
def native_group_norm(x, weight, bias, n, c, hxw, group, eps):
    xf = up(x).reshape((x.shape[0], group, -1))
    mu = jnp.mean(xf, axis=-1, keepdims=True)
    rstd = lax.rsqrt(jnp.var(xf, axis=-1, keepdims=True) + eps)
    y = ((xf - mu) * rstd).reshape(x.shape)
    y = _affine(y, weight, bias, (1, -1) + (1,) * (x.ndim - 2))
    return y.astype(x.dtype), mu[..., 0], rstd[..., 0]


@op("aten._native_batch_norm_legit_no_training.default")
def batch_norm_eval(x, weight, bias, running_mean, running_var, momentum, eps):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    scale = lax.rsqrt(up(running_var) + eps)
    if weight is not None:
        scale = scale * weight
    shift = -up(running_mean) * scale
    if bias is not None:
        shift = shift + bias
    y = up(x) * scale.reshape(shape) + shift.reshape(shape)
    empty = jnp.zeros((0,), y.dtype)
    return y.astype(x.dtype), empty, empty


@op("aten._native_batch_norm_legit.no_stats")
def batch_norm_batch_stats(x, weight, bias, training, momentum, eps):
    """Batch norm with the input's own statistics and no running ones: what instance norm
    (MONAI's 3D encoders) becomes, on a (1, B*C, ...) view. Returns the biased-variance
    normalisation and the saved mean and inverse std per channel, as ATen does."""
    axes = (0, *range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    xf = up(x)
    mean = jnp.mean(xf, axis=axes)
    rstd = lax.rsqrt(jnp.var(xf, axis=axes) + eps)
    y = _affine((xf - mean.reshape(shape)) * rstd.reshape(shape), weight, bias, shape)
    return y.astype(x.dtype), mean, rstd


@op("aten._native_batch_norm_legit_functional.default")
def batch_norm_train(x, weight, bias, running_mean, running_var, training, momentum, eps):
    """Train-mode batch norm, ATen's functional form: normalised with the batch's own
    statistics (biased variance), and the running statistics moved ``momentum`` of the way
    to the batch's (unbiased variance, as torch). Returns ``(y, mean, rstd, new running mean,
    new running var)``; out of training, the running statistics normalise and come back as
    they were."""
    if not training:
        y, _, _ = batch_norm_eval(x, weight, bias, running_mean, running_var, momentum, eps)
        empty = jnp.zeros((0,), jnp.float32)
        return y, empty, empty, running_mean, running_var
    axes = (0, *range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    xf = up(x)
    mean = jnp.mean(xf, axis=axes)
    var = jnp.var(xf, axis=axes)
    rstd = lax.rsqrt(var + eps)
    y = _affine((xf - mean.reshape(shape)) * rstd.reshape(shape), weight, bias, shape)
    n = jnp.asarray(x.size // x.shape[1], jnp.float32)  # symbolic under a dynamic batch
    unbiased = var * (n / jnp.maximum(n - 1, 1))
    new_mean = (1 - momentum) * up(running_mean) + momentum * mean
    new_var = (1 - momentum) * up(running_var) + momentum * unbiased
    return (
        y.astype(x.dtype),
        mean,
        rstd,
        new_mean.astype(running_mean.dtype),
        new_var.astype(running_var.dtype),
    )
