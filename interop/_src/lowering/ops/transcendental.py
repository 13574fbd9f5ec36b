"""Elementwise functions of one float: roots, exponentials, logarithms, trigonometry, erf."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

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
