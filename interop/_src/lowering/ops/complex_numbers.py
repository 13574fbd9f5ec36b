"""Complex numbers: building them (``complex``, ``polar``, ``view_as_complex``), taking them
apart (``view_as_real``, ``angle``) and conjugating.

JAX holds complex64, and complex128 under ``jax_enable_x64`` (narrowed to complex64 without
it, as float64 is to float32). torch's ``complex32`` has no JAX dtype: the build-time check
refuses any node producing it (``check.py``).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax import lax

from interop._src.lowering.ops._helpers import fl
from interop._src.lowering.ops.registry import op


@op("aten.complex.default")
def complex_(real, imag):
    dtype = jnp.result_type(fl(real), fl(imag))
    return lax.complex(real.astype(dtype), imag.astype(dtype))


@op("aten.polar.default")
def polar(abs, angle):
    # torch's definition: complex(abs * cos(angle), abs * sin(angle)) (polar(inf, 0) has a NaN
    # imaginary part, as in torch, not 0)
    abs, angle = fl(abs), fl(angle)
    return complex_(abs * jnp.cos(angle), abs * jnp.sin(angle))


@op("aten.view_as_real.default")
def view_as_real(x):
    return jnp.stack([jnp.real(x), jnp.imag(x)], axis=-1)


@op("aten.view_as_complex.default")
def view_as_complex(x):
    return lax.complex(x[..., 0], x[..., 1])


@op("aten._conj.default", "aten._conj_physical.default", "aten.conj_physical.default")
def conj(x):
    return jnp.conj(x) if jnp.iscomplexobj(x) else x


@op("aten.angle.default")
def angle(x):
    if jnp.iscomplexobj(x):
        return jnp.angle(x)
    # torch on real numbers: pi below 0, 0 at and above (-0.0 included), NaN kept
    x = fl(x)
    return jnp.where(jnp.isnan(x), x, jnp.where(x < 0, math.pi, 0.0).astype(x.dtype))
