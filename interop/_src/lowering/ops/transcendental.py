"""Elementwise functions of one float: roots, exponentials, logarithms, trigonometry and its
inverses, hyperbolic functions, erf and its relatives.

Those added for issue 22 compute low-precision (and integer) inputs in float32, as torch's CPU
kernels do, and the interpreter rounds the result once to torch's dtype (``_helpers.fl``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from interop._src.lowering.ops._helpers import fl, unary
from interop._src.lowering.ops.registry import op


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


for _name, _fn in {
    "log10": jnp.log10,
    "exp2": jnp.exp2,
    "tan": jnp.tan,
    "asin": jnp.arcsin,
    "acos": jnp.arccos,
    "atan": jnp.arctan,
    "sinh": jnp.sinh,
    "cosh": jnp.cosh,
    "asinh": jnp.arcsinh,
    "acosh": jnp.arccosh,
    "atanh": jnp.arctanh,
    "erfc": jax.scipy.special.erfc,
    "erfinv": jax.scipy.special.erfinv,
}.items():
    unary(_name, _fn)


@op("aten.atan2.default")
def atan2(a, b):
    return jnp.arctan2(fl(a), fl(b))


@op("aten.hypot.default")
def hypot(a, b):
    return jnp.hypot(fl(a), fl(b))
