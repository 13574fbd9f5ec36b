"""The op table: one small JAX function per core-ATen op (and the few Python/sym ops in graphs).

Each function takes the op's arguments as ``torch.export`` records them (JAX arrays in place of
tensors, Python scalars, lists, ``torch.dtype``) with the ATen schema's defaults as Python
defaults. Results need not match torch's dtype exactly: the interpreter casts every result to
the dtype torch recorded for that node, so promotion follows torch. ``TABLE`` maps the op's
name (``str(torch.ops.aten.add.Tensor)`` -> ``"aten.add.Tensor"``) to its function.

Conventions: integer tensors are int32 and float64 is float32 unless ``jax_enable_x64`` is on
(JAX's default); low-precision floats (bfloat16, float16) accumulate matmuls, convolutions,
norms and softmax in float32, as torch's CPU kernels do, and are rounded back per op.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch
from jax import lax

from interop._src.dtypes import jax_dtype as jnp_dtype
from interop._src.lowering import attention as _attention
from interop._src.lowering import conv as _conv
from interop._src.lowering import resample as _rs

TABLE: dict[str, Callable[..., Any]] = {}
_SQRT1_2 = 1.0 / math.sqrt(2.0)


def op(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a function in ``TABLE`` under one or more op names."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        for name in names:
            TABLE[name] = fn
        return fn

    return register


def _dt(dtype: torch.dtype | None) -> Any:
    return None if dtype is None else jnp_dtype(dtype)


def _low(x: Any) -> bool:
    return getattr(x, "dtype", None) in (jnp.bfloat16, jnp.float16)


def _up(x: jax.Array) -> jax.Array:
    """float32 for the low-precision floats (torch's CPU accumulation type), else x."""
    return x.astype(jnp.float32) if _low(x) else x


def _axes(dim: int | Sequence[int] | None) -> tuple[int, ...] | None:
    """ATen's reduction dims: None or [] mean all axes."""
    if dim is None or (not isinstance(dim, int) and len(dim) == 0):
        return None
    return (dim,) if isinstance(dim, int) else tuple(dim)


# -- arithmetic ---------------------------------------------------------------------------------


@op("aten.add.Tensor", "aten.add.Scalar")
def add(a, b, alpha=1):
    return a + (b if alpha == 1 else alpha * b)


@op("aten.sub.Tensor", "aten.sub.Scalar")
def sub(a, b, alpha=1):
    return a - (b if alpha == 1 else alpha * b)


@op("aten.rsub.Scalar", "aten.rsub.Tensor")
def rsub(a, b, alpha=1):
    return b - (a if alpha == 1 else alpha * a)


@op("aten.mul.Tensor", "aten.mul.Scalar")
def mul(a, b):
    return a * b


@op("aten.div.Tensor", "aten.div.Scalar")
def div(a, b):
    return jnp.true_divide(a, b)


@op("aten.div.Tensor_mode", "aten.div.Scalar_mode")
def div_mode(a, b, rounding_mode=None):
    if rounding_mode is None:
        return jnp.true_divide(a, b)
    if rounding_mode == "floor":
        return jnp.floor_divide(a, b)
    q = jnp.true_divide(a, b)
    return jnp.trunc(q).astype(jnp.result_type(a, b))


@op("aten.floor_divide.default", "aten.floor_divide.Scalar")
def floor_divide(a, b):
    return jnp.floor_divide(a, b)


@op("aten.remainder.Tensor", "aten.remainder.Scalar")
def remainder(a, b):
    return jnp.remainder(a, b)


@op("aten.fmod.Tensor", "aten.fmod.Scalar")
def fmod(a, b):
    return jnp.fmod(a, b)


@op("aten.pow.Tensor_Scalar", "aten.pow.Tensor_Tensor")
def pow_(a, b):
    if isinstance(b, (int, float)) and float(b) == 2.0:
        return a * a
    return jnp.power(a, b)


@op("aten.pow.Scalar")
def pow_scalar(a, b):
    return jnp.power(jnp.asarray(a, b.dtype), b)


@op("aten.neg.default")
def neg(x):
    return -x


@op("aten.abs.default")
def abs_(x):
    return jnp.abs(x)


@op("aten.sign.default")
def sign(x):
    return jnp.sign(x)


@op("aten.reciprocal.default")
def reciprocal(x):
    return 1 / x


@op("aten.sqrt.default")
def sqrt(x):
    return jnp.sqrt(x)


@op("aten.rsqrt.default")
def rsqrt(x):
    return lax.rsqrt(x.astype(jnp.result_type(x, 1.0)))


@op("aten.exp.default")
def exp(x):
    return jnp.exp(x)


@op("aten.expm1.default")
def expm1(x):
    return jnp.expm1(x)


@op("aten.log.default")
def log(x):
    return jnp.log(x)


@op("aten.log1p.default")
def log1p(x):
    return jnp.log1p(x)


@op("aten.log2.default")
def log2(x):
    return jnp.log2(x)


@op("aten.sin.default")
def sin(x):
    return jnp.sin(x)


@op("aten.cos.default")
def cos(x):
    return jnp.cos(x)


@op("aten.tanh.default")
def tanh(x):
    return jnp.tanh(x)


@op("aten.erf.default")
def erf(x):
    return jax.scipy.special.erf(x)


@op("aten.floor.default")
def floor(x):
    return jnp.floor(x)


@op("aten.ceil.default")
def ceil(x):
    return jnp.ceil(x)


@op("aten.round.default")
def round_(x):
    return jnp.round(x)  # half to even, as torch


@op("aten.trunc.default")
def trunc(x):
    return jnp.trunc(x)


@op("aten.clamp.default", "aten.clamp.Tensor")
def clamp(x, min=None, max=None):
    if min is not None:
        x = jnp.maximum(x, jnp.asarray(min, x.dtype) if not hasattr(min, "dtype") else min)
    if max is not None:
        x = jnp.minimum(x, jnp.asarray(max, x.dtype) if not hasattr(max, "dtype") else max)
    return x


@op("aten.clamp_min.default")
def clamp_min(x, min):
    return clamp(x, min=min)


@op("aten.clamp_max.default")
def clamp_max(x, max):
    return clamp(x, max=max)


@op("aten.maximum.default")
def maximum(a, b):
    return jnp.maximum(a, b)


@op("aten.minimum.default")
def minimum(a, b):
    return jnp.minimum(a, b)


# -- activations --------------------------------------------------------------------------------


@op("aten.relu.default")
def relu(x):
    return jnp.maximum(x, jnp.zeros((), x.dtype))


@op("aten.gelu.default")
def gelu(x, approximate="none"):
    xf = _up(x)
    if approximate == "tanh":
        return jax.nn.gelu(xf, approximate=True).astype(x.dtype)
    # torch's own form, 0.5 x (1 + erf(x / sqrt 2)), not jax.nn.gelu's erfc one: XLA's CPU erf
    # ran 2.1x faster than its erfc (GELU rows of benchmarks/lowering.py), and the same formula
    # rounds like torch where 1 + erf cancels (x < -5: both give 0, not 1e-7 of x)
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
    return jax.nn.softmax(_up(x), axis=dim).astype(jnp.float32 if half_to_float else x.dtype)


@op("aten._log_softmax.default")
def log_softmax(x, dim, half_to_float=False):
    return jax.nn.log_softmax(_up(x), axis=dim).astype(jnp.float32 if half_to_float else x.dtype)


# -- comparison, logic, selection ------------------------------------------------------------------


@op("aten.eq.Tensor", "aten.eq.Scalar")
def eq(a, b):
    return a == b


@op("aten.ne.Tensor", "aten.ne.Scalar")
def ne(a, b):
    return a != b


@op("aten.lt.Tensor", "aten.lt.Scalar")
def lt(a, b):
    return a < b


@op("aten.le.Tensor", "aten.le.Scalar")
def le(a, b):
    return a <= b


@op("aten.gt.Tensor", "aten.gt.Scalar")
def gt(a, b):
    return a > b


@op("aten.ge.Tensor", "aten.ge.Scalar")
def ge(a, b):
    return a >= b


@op("aten.isnan.default")
def isnan(x):
    return jnp.isnan(x)


@op("aten.isinf.default")
def isinf(x):
    return jnp.isinf(x)


@op("aten.logical_not.default")
def logical_not(x):
    return jnp.logical_not(x)


@op("aten.logical_and.default")
def logical_and(a, b):
    return jnp.logical_and(a, b)


@op("aten.logical_or.default")
def logical_or(a, b):
    return jnp.logical_or(a, b)


@op("aten.logical_xor.default")
def logical_xor(a, b):
    return jnp.logical_xor(a, b)


@op("aten.bitwise_not.default")
def bitwise_not(x):
    return jnp.logical_not(x) if x.dtype == jnp.bool_ else jnp.bitwise_not(x)


@op("aten.bitwise_and.Tensor", "aten.bitwise_and.Scalar")
def bitwise_and(a, b):
    return jnp.bitwise_and(a, b)


@op("aten.bitwise_or.Tensor", "aten.bitwise_or.Scalar")
def bitwise_or(a, b):
    return jnp.bitwise_or(a, b)


@op("aten.bitwise_xor.Tensor", "aten.bitwise_xor.Scalar")
def bitwise_xor(a, b):
    return jnp.bitwise_xor(a, b)


@op("aten.where.self", "aten.where.ScalarSelf", "aten.where.ScalarOther", "aten.where.Scalar")
def where(cond, a, b):
    return jnp.where(cond, a, b)


@op("aten.masked_fill.Scalar", "aten.masked_fill.Tensor")
def masked_fill(x, mask, value):
    return jnp.where(mask, jnp.asarray(value, x.dtype), x)


# -- reductions ---------------------------------------------------------------------------------


@op("aten.sum.dim_IntList", "aten.sum.default")
def sum_(x, dim=None, keepdim=False, dtype=None):
    return jnp.sum(_up(x), axis=_axes(dim), keepdims=keepdim, dtype=_dt(dtype))


@op("aten.mean.dim", "aten.mean.default")
def mean(x, dim=None, keepdim=False, dtype=None):
    return jnp.mean(_up(x), axis=_axes(dim), keepdims=keepdim, dtype=_dt(dtype))


@op("aten.prod.dim_int", "aten.prod.default")
def prod(x, dim=None, keepdim=False, dtype=None):
    return jnp.prod(x, axis=dim, keepdims=keepdim, dtype=_dt(dtype))


@op("aten.var.correction")
def var(x, dim=None, *, correction=None, keepdim=False):
    ddof = 1 if correction is None else correction
    return jnp.var(_up(x), axis=_axes(dim), ddof=ddof, keepdims=keepdim)


@op("aten.var_mean.correction")
def var_mean(x, dim=None, *, correction=None, keepdim=False):
    return var(x, dim, correction=correction, keepdim=keepdim), mean(x, dim, keepdim)


@op("aten.amax.default")
def amax(x, dim=(), keepdim=False):
    return jnp.max(x, axis=_axes(dim), keepdims=keepdim)


@op("aten.amin.default")
def amin(x, dim=(), keepdim=False):
    return jnp.min(x, axis=_axes(dim), keepdims=keepdim)


@op("aten.max.dim")
def max_dim(x, dim, keepdim=False):
    return jnp.max(x, axis=dim, keepdims=keepdim), jnp.argmax(x, axis=dim, keepdims=keepdim)


@op("aten.min.dim")
def min_dim(x, dim, keepdim=False):
    return jnp.min(x, axis=dim, keepdims=keepdim), jnp.argmin(x, axis=dim, keepdims=keepdim)


@op("aten.max.default")
def max_(x):
    return jnp.max(x)


@op("aten.min.default")
def min_(x):
    return jnp.min(x)


@op("aten.argmax.default")
def argmax(x, dim=None, keepdim=False):
    return jnp.argmax(x, axis=dim, keepdims=keepdim)


@op("aten.argmin.default")
def argmin(x, dim=None, keepdim=False):
    return jnp.argmin(x, axis=dim, keepdims=keepdim)


@op("aten.any.default", "aten.any.dim", "aten.any.dims")
def any_(x, dim=None, keepdim=False):
    return jnp.any(x, axis=_axes(dim), keepdims=keepdim)


@op("aten.all.default", "aten.all.dim", "aten.all.dims")
def all_(x, dim=None, keepdim=False):
    return jnp.all(x, axis=_axes(dim), keepdims=keepdim)


@op("aten.cumsum.default")
def cumsum(x, dim, dtype=None):
    return jnp.cumsum(x, axis=dim, dtype=_dt(dtype))


@op("aten.linalg_vector_norm.default")
def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    y = _up(x) if dtype is None else x.astype(_dt(dtype))
    return jnp.linalg.vector_norm(y, ord=ord, axis=_axes(dim), keepdims=keepdim)


# -- matmul, normalisation, attention ------------------------------------------------------------


def _matmul(a, b):
    if _low(a) or _low(b):
        return jnp.matmul(a, b, preferred_element_type=jnp.float32).astype(jnp.result_type(a, b))
    return jnp.matmul(a, b)


@op("aten.mm.default", "aten.bmm.default", "aten.matmul.default")
def mm(a, b):
    return _matmul(a, b)


@op("aten.addmm.default", "aten.baddbmm.default")
def addmm(bias, a, b, *, beta=1, alpha=1):
    ab = _matmul(a, b)
    ab = ab if alpha == 1 else alpha * ab
    return ab + (bias if beta == 1 else beta * bias) if beta != 0 else ab


@op("aten.linear.default")
def linear(x, w, b=None):
    y = _matmul(x, w.T)
    return y if b is None else y + b


def _affine(y, weight, bias, shape=None):
    """A norm's optional ``* weight + bias``, reshaped to ``shape`` (channels on axis 1) if given."""
    if weight is not None:
        y = y * (weight if shape is None else weight.reshape(shape))
    if bias is not None:
        y = y + (bias if shape is None else bias.reshape(shape))
    return y


@op("aten.native_layer_norm.default")
def native_layer_norm(x, normalized_shape, weight, bias, eps):
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    xf = _up(x)
    mu = jnp.mean(xf, axis=axes, keepdims=True)
    rstd = lax.rsqrt(jnp.mean(jnp.square(xf - mu), axis=axes, keepdims=True) + eps)
    y = _affine((xf - mu) * rstd, weight, bias)
    return y.astype(x.dtype), mu, rstd


@op("aten.native_group_norm.default")
def native_group_norm(x, weight, bias, n, c, hxw, group, eps):
    xf = _up(x).reshape((x.shape[0], group, -1))
    mu = jnp.mean(xf, axis=-1, keepdims=True)
    rstd = lax.rsqrt(jnp.var(xf, axis=-1, keepdims=True) + eps)
    y = ((xf - mu) * rstd).reshape(x.shape)
    y = _affine(y, weight, bias, (1, -1) + (1,) * (x.ndim - 2))
    return y.astype(x.dtype), mu[..., 0], rstd[..., 0]


@op("aten._native_batch_norm_legit_no_training.default")
def batch_norm_eval(x, weight, bias, running_mean, running_var, momentum, eps):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    scale = lax.rsqrt(_up(running_var) + eps)
    if weight is not None:
        scale = scale * weight
    shift = -_up(running_mean) * scale
    if bias is not None:
        shift = shift + bias
    y = _up(x) * scale.reshape(shape) + shift.reshape(shape)
    empty = jnp.zeros((0,), y.dtype)
    return y.astype(x.dtype), empty, empty


@op("aten._native_batch_norm_legit.no_stats")
def batch_norm_batch_stats(x, weight, bias, training, momentum, eps):
    """Batch norm with the input's own statistics and no running ones: what instance norm
    (MONAI's 3D encoders) becomes, on a (1, B*C, ...) view. Returns the biased-variance
    normalisation and the saved mean and inverse std per channel, as ATen does."""
    axes = (0, *range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    xf = _up(x)
    mean = jnp.mean(xf, axis=axes)
    rstd = lax.rsqrt(jnp.var(xf, axis=axes) + eps)
    y = _affine((xf - mean.reshape(shape)) * rstd.reshape(shape), weight, bias, shape)
    return y.astype(x.dtype), mean, rstd


@op("aten._scaled_dot_product_flash_attention_for_cpu.default")
def sdpa_flash_cpu(q, k, v, dropout_p=0.0, is_causal=False, *, attn_mask=None, scale=None):
    return _attention.attention(q, k, v, attn_mask, is_causal, scale)


@op("aten.scaled_dot_product_attention.default")
def sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, *, scale=None, enable_gqa=False):
    return _attention.attention(q, k, v, attn_mask, is_causal, scale)[0]


# -- convolution, pooling, resampling -------------------------------------------------------------


@op("aten.convolution.default")
def convolution(x, w, b, stride, padding, dilation, transposed, output_padding, groups):
    return _conv.conv(x, w, b, stride, padding, dilation, transposed, output_padding, groups)


@op("aten.max_pool2d_with_indices.default")
def max_pool2d_with_indices(x, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    # indices are never computed: the interpreter refuses graphs that use them (max_unpool)
    return _conv.max_pool(x, kernel_size, stride, padding, dilation, ceil_mode), None


@op("aten.max_pool2d.default")
def max_pool2d(x, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    return _conv.max_pool(x, kernel_size, stride, padding, dilation, ceil_mode)


@op("aten.avg_pool2d.default")
def avg_pool2d(
    x,
    kernel_size,
    stride=(),
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    return _conv.avg_pool(
        x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    )


@op("aten._adaptive_avg_pool2d.default", "aten.adaptive_avg_pool2d.default")
def adaptive_avg_pool2d(x, output_size):
    h, w = x.shape[-2:]
    oh, ow = (output_size, output_size) if isinstance(output_size, int) else output_size
    oh, ow = oh or h, ow or w
    if h % oh == 0 and w % ow == 0:
        y = _up(x).reshape((*x.shape[:-2], oh, h // oh, ow, w // ow)).mean(axis=(-3, -1))
        return y.astype(x.dtype)
    return _separable(x, _rs.adaptive_avg_matrix(h, oh), _rs.adaptive_avg_matrix(w, ow))


def _separable(x, mh: np.ndarray, mw: np.ndarray):
    """Apply ``(oh, h)`` and ``(ow, w)`` matrices to the last two axes (float32 accumulation)."""
    xf = _up(x)
    mh, mw = jnp.asarray(mh, xf.dtype), jnp.asarray(mw, xf.dtype)
    y = jnp.einsum("...hw,oh,pw->...op", xf, mh, mw, precision=lax.Precision.HIGHEST)
    return y.astype(x.dtype)


def _upsample(x, output_size, scale_factors, matrix, scales=None):
    sizes, vec_scales = _rs.output_sizes(x.shape[-2:], output_size, scale_factors)
    scales = vec_scales if scales is None else scales
    return _separable(
        x,
        matrix(x.shape[-2], sizes[0], scales[0]),
        matrix(x.shape[-1], sizes[1], scales[1]),
    )


def _axis_matrix(kind: str, align_corners: bool) -> Callable[[int, int, float | None], np.ndarray]:
    makers = {
        "bicubic": lambda i, o, s: _rs.cubic_matrix(i, o, align_corners, s),
        "bilinear": lambda i, o, s: _rs.linear_matrix(i, o, align_corners, s),
        "bicubic_aa": lambda i, o, s: _rs.antialias_matrix(i, o, align_corners, s, cubic=True),
        "bilinear_aa": lambda i, o, s: _rs.antialias_matrix(i, o, align_corners, s, cubic=False),
    }
    return makers[kind]


@op("aten.upsample_bicubic2d.vec")
def upsample_bicubic2d(x, output_size, align_corners, scale_factors=None, *, scales=None):
    return _upsample(x, output_size, scale_factors, _axis_matrix("bicubic", align_corners), scales)


@op("aten.upsample_bilinear2d.vec")
def upsample_bilinear2d(x, output_size, align_corners, scale_factors=None, *, scales=None):
    return _upsample(x, output_size, scale_factors, _axis_matrix("bilinear", align_corners), scales)


@op("aten._upsample_bicubic2d_aa.vec")
def upsample_bicubic2d_aa(x, output_size, align_corners, scale_factors=None, *, scales=None):
    m = _axis_matrix("bicubic_aa", align_corners)
    return _upsample(x, output_size, scale_factors, m, scales)


@op("aten._upsample_bilinear2d_aa.vec")
def upsample_bilinear2d_aa(x, output_size, align_corners, scale_factors=None, *, scales=None):
    m = _axis_matrix("bilinear_aa", align_corners)
    return _upsample(x, output_size, scale_factors, m, scales)


@op("aten.upsample_nearest2d.vec")
def upsample_nearest2d(x, output_size, scale_factors=None):
    return _upsample(
        x, output_size, scale_factors, lambda i, o, s: _rs.nearest_matrix(i, o, s, False)
    )


@op("aten._upsample_nearest_exact2d.vec")
def upsample_nearest_exact2d(x, output_size, scale_factors=None):
    return _upsample(
        x, output_size, scale_factors, lambda i, o, s: _rs.nearest_matrix(i, o, s, True)
    )


# -- shapes and views ----------------------------------------------------------------------------


@op(
    "aten.view.default",
    "aten._unsafe_view.default",
    "aten.reshape.default",
    "aten.view_copy.default",
)
def view(x, size):
    return jnp.reshape(x, tuple(size))


@op("aten.permute.default")
def permute(x, dims):
    return jnp.transpose(x, tuple(dims))


@op("aten.transpose.int")
def transpose(x, dim0, dim1):
    return jnp.swapaxes(x, dim0, dim1)


@op("aten.t.default")
def t(x):
    return x.T


@op("aten.expand.default")
def expand(x, size, *, implicit=False):
    size = tuple(size)
    lead = len(size) - x.ndim
    shape = tuple(x.shape[i - lead] if s == -1 else s for i, s in enumerate(size))
    return jnp.broadcast_to(x, shape)


@op(
    "aten.clone.default",
    "aten.alias.default",
    "aten.lift_fresh_copy.default",
    "aten.detach.default",
    "aten.contiguous.default",
)
def clone(x, *, memory_format=None):
    return x


@op("aten._to_copy.default")
def to_copy(
    x,
    *,
    dtype=None,
    layout=None,
    device=None,
    pin_memory=None,
    non_blocking=False,
    memory_format=None,
):
    return x if dtype is None else x.astype(jnp_dtype(dtype))


@op("aten.unsqueeze.default")
def unsqueeze(x, dim):
    return jnp.expand_dims(x, dim if dim >= 0 else dim + x.ndim + 1)


@op("aten.squeeze.dims", "aten.squeeze.dim", "aten.squeeze.default")
def squeeze(x, dim=None):
    dims = range(x.ndim) if dim is None else ([dim] if isinstance(dim, int) else dim)
    return jnp.squeeze(x, tuple(d for d in dims if x.shape[d] == 1))


@op("aten.cat.default")
def cat(tensors, dim=0):
    # ATen skips legacy empty 1-D tensors of shape (0,) whatever the others' rank
    parts = [a for a in tensors if not (a.ndim == 1 and a.shape[0] == 0)] or list(tensors)
    dtype = jnp.result_type(*parts)
    return jnp.concatenate([a.astype(dtype) for a in parts], axis=dim)


@op("aten.stack.default")
def stack(tensors, dim=0):
    return jnp.stack(tensors, axis=dim)


#: ATen's "no bound" (``x[a:]`` records ``end=INT64_MAX``): an int no real size reaches
_INT64_MAX = 2**63 - 1


def _bound(i, size, default):
    """One ATen slice bound: None -> default, negative wraps, then clamped to ``[0, size]``.

    Written with ``jax.core.max_dim`` / ``min_dim`` so that it holds on a symbolic size (the
    batch axis under ``jax.export``), where ``INT64_MAX`` would overflow JAX's int32 dims.
    """
    if i is None:
        return default
    if isinstance(i, int) and i >= _INT64_MAX:
        return size
    if i < 0:
        i = i + size
    return jax.core.min_dim(jax.core.max_dim(i, 0), size)


def _slice_bounds(x, dim, start, end):
    """``(dim, start, end)`` normalised as ATen's ``slice`` does (``end >= start``)."""
    dim = dim % x.ndim
    size = x.shape[dim]
    start = _bound(start, size, 0)
    return dim, start, jax.core.max_dim(_bound(end, size, size), start)


@op("aten.slice.Tensor")
def slice_(x, dim=0, start=None, end=None, step=1):
    dim, start, end = _slice_bounds(x, dim, start, end)
    return lax.slice_in_dim(x, start, end, step, axis=dim)


@op("aten.select.int")
def select(x, dim, index):
    return jnp.take(x, index, axis=dim) if not isinstance(index, int) else _select(x, dim, index)


def _select(x, dim, index):
    idx = [slice(None)] * x.ndim
    idx[dim] = index
    return x[tuple(idx)]


@op("aten.split_with_sizes.default")
def split_with_sizes(x, split_sizes, dim=0):
    return jnp.split(x, np.cumsum(split_sizes)[:-1].tolist(), axis=dim)


@op("aten.split.Tensor")
def split(x, split_size, dim=0):
    n = x.shape[dim]
    return jnp.split(x, list(range(split_size, n, split_size)), axis=dim)


@op("aten.unbind.int")
def unbind(x, dim=0):
    return [_select(x, dim, i) for i in range(x.shape[dim])]


@op("aten.constant_pad_nd.default")
def constant_pad_nd(x, pad, value=0):
    # pad = (last_lo, last_hi, second_last_lo, ...); negative amounts crop (lax.pad does both)
    cfg = [(0, 0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        cfg[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1], 0)
    return lax.pad(x, jnp.asarray(value, x.dtype), cfg)


@op("aten.roll.default")
def roll(x, shifts, dims=()):
    if not dims:
        return jnp.roll(x.reshape(-1), shifts).reshape(x.shape)
    return jnp.roll(x, tuple(shifts), tuple(dims))


@op("aten.flip.default")
def flip(x, dims):
    return jnp.flip(x, tuple(dims))


@op("aten.repeat.default")
def repeat(x, repeats):
    return jnp.tile(x, tuple(repeats))


@op("aten.tril.default")
def tril(x, diagonal=0):
    return jnp.tril(x, diagonal)


@op("aten.triu.default")
def triu(x, diagonal=0):
    return jnp.triu(x, diagonal)


@op("aten.as_strided.default")
def as_strided(x, size, stride, storage_offset=None):
    # valid on a contiguous input (the interpreter checks the recorded strides first)
    idx = storage_offset or 0
    for n, s in zip(size, stride, strict=True):
        idx = np.add.outer(idx, np.arange(n) * s) if n else np.zeros((0,), np.int64)
    return jnp.take(x.reshape(-1), jnp.asarray(np.asarray(idx, np.int64).reshape(tuple(size))))


# -- indexing -----------------------------------------------------------------------------------


@op("aten.index.Tensor")
def index(x, indices):
    return x[tuple(slice(None) if i is None else i for i in indices)]


@op("aten.index_select.default")
def index_select(x, dim, index):
    return jnp.take(x, index, axis=dim)


@op("aten.gather.default")
def gather(x, dim, index, *, sparse_grad=False):
    return jnp.take_along_axis(x, index, axis=dim)


@op("aten.index_put.default")
def index_put(x, indices, values, accumulate=False):
    ref = x.at[tuple(slice(None) if i is None else i for i in indices)]
    return ref.add(values) if accumulate else ref.set(values.astype(x.dtype))


@op("aten.slice_scatter.default")
def slice_scatter(x, src, dim=0, start=None, end=None, step=1):
    dim, start, end = _slice_bounds(x, dim, start, end)
    idx = [slice(None)] * x.ndim
    idx[dim] = slice(start, end, step)
    return x.at[tuple(idx)].set(src.astype(x.dtype))


@op("aten.select_scatter.default")
def select_scatter(x, src, dim, index):
    idx = [slice(None)] * x.ndim
    idx[dim] = index
    return x.at[tuple(idx)].set(src.astype(x.dtype))


@op("aten.embedding.default")
def embedding(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    return jnp.take(weight, indices, axis=0)


# -- creation -----------------------------------------------------------------------------------


@op("aten.arange.start_step", "aten.arange.start", "aten.arange.default")
def arange(start, end=None, step=1, *, dtype=None, layout=None, device=None, pin_memory=None):
    if end is None:
        start, end = 0, start
    return jnp.arange(start, end, step, dtype=_dt(dtype))


@op("aten.full.default")
def full(size, fill_value, *, dtype=None, layout=None, device=None, pin_memory=None):
    return jnp.full(tuple(size), fill_value, dtype=_dt(dtype))


@op("aten.full_like.default")
def full_like(
    x, fill_value, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None
):
    return jnp.full(x.shape, fill_value, dtype=_dt(dtype) or x.dtype)


@op("aten.zeros_like.default", "aten.empty_like.default")
def zeros_like(x, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    return jnp.zeros(x.shape, dtype=_dt(dtype) or x.dtype)


@op("aten.ones_like.default")
def ones_like(x, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    return jnp.ones(x.shape, dtype=_dt(dtype) or x.dtype)


@op("aten.zeros.default", "aten.empty.memory_format")
def zeros(size, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    return jnp.zeros(tuple(size), dtype=_dt(dtype) or jnp.float32)


@op("aten.ones.default")
def ones(size, *, dtype=None, layout=None, device=None, pin_memory=None):
    return jnp.ones(tuple(size), dtype=_dt(dtype) or jnp.float32)


@op("aten.new_zeros.default", "aten.new_empty.default")
def new_zeros(x, size, *, dtype=None, layout=None, device=None, pin_memory=None):
    return jnp.zeros(tuple(size), dtype=_dt(dtype) or x.dtype)


@op("aten.new_ones.default")
def new_ones(x, size, *, dtype=None, layout=None, device=None, pin_memory=None):
    return jnp.ones(tuple(size), dtype=_dt(dtype) or x.dtype)


@op("aten.new_full.default")
def new_full(x, size, fill_value, *, dtype=None, layout=None, device=None, pin_memory=None):
    return jnp.full(tuple(size), fill_value, dtype=_dt(dtype) or x.dtype)


@op("aten.scalar_tensor.default")
def scalar_tensor(s, *, dtype=None, layout=None, device=None, pin_memory=None):
    return jnp.asarray(s, dtype=_dt(dtype) or jnp.float32)


@op("aten.fill.Scalar")
def fill(x, value):
    return jnp.full(x.shape, value, x.dtype)


@op("aten.copy.default")
def copy(dst, src, non_blocking=False):
    return jnp.broadcast_to(src, dst.shape).astype(dst.dtype)


# -- symbolic sizes and Python arithmetic on them ------------------------------------------------


@op("aten.sym_size.int")
def sym_size(x, dim):
    return x.shape[dim]


@op("aten.sym_numel.default")
def sym_numel(x):
    return math.prod(x.shape)


@op(
    "aten._assert_scalar.default",
    "aten.sym_constrain_range_for_size.default",
    "aten._assert_tensor_metadata.default",
)
def no_op(*args, **kwargs):
    return None


for _name, _fn in {
    "getitem": operator.getitem,
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "truediv": operator.truediv,
    "floordiv": operator.floordiv,
    "mod": operator.mod,
    "pow": operator.pow,
    "neg": operator.neg,
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}.items():
    TABLE[f"operator.{_name}"] = _fn
TABLE["torch.sym_int"] = int
TABLE["torch.sym_float"] = float
TABLE["torch.sym_max"] = max
TABLE["torch.sym_min"] = min
TABLE["math.ceil"] = math.ceil
TABLE["math.floor"] = math.floor
TABLE["math.sqrt"] = math.sqrt


def _upsample_default(vec: Callable[..., Any]) -> Callable[..., Any]:
    """The ``.default`` overload (sizes always given, scales optional) from the ``.vec`` one."""

    def fn(x, output_size, align_corners, scales_h=None, scales_w=None):
        return vec(x, output_size, align_corners, None, scales=[scales_h, scales_w])

    return fn


for _vec in (
    "upsample_bicubic2d",
    "upsample_bilinear2d",
    "_upsample_bicubic2d_aa",
    "_upsample_bilinear2d_aa",
):
    TABLE[f"aten.{_vec}.default"] = _upsample_default(TABLE[f"aten.{_vec}.vec"])
