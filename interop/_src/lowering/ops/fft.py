"""Discrete Fourier transforms: ATen's three FFT primitives, which every ``torch.fft`` function
(``fft``, ``rfft2``, ``ihfftn``, ...) and ``torch.stft`` reach after decomposition.

``normalization`` is ATen's ``fft_norm_mode``: 0 none, 1 divide by ``sqrt(n)``, 2 divide by
``n``, where ``n`` is the number of points transformed (the product of the signal's sizes along
``dim``: the output's for ``_fft_c2r``). ATen applies it in whichever direction it is asked
for, so each maps to the ``norm=`` of ``jnp.fft`` that scales that direction by that amount.
"""

from __future__ import annotations

import jax.numpy as jnp

from interop._src.lowering.ops._helpers import fl
from interop._src.lowering.ops.registry import op

#: fft_norm_mode -> jnp.fft's norm, for a forward transform (exp(-2 pi i ...))
_FORWARD = {0: "backward", 1: "ortho", 2: "forward"}
#: the same for an inverse transform (exp(+2 pi i ...)): "forward" leaves the inverse unscaled
_INVERSE = {0: "forward", 1: "ortho", 2: "backward"}


def _complex(x):
    """``x`` as the complex dtype of its precision (complex64 for float32 and below)."""
    x = fl(x)
    return x if jnp.iscomplexobj(x) else x.astype(jnp.result_type(x, jnp.complex64))


@op("aten._fft_r2c.default")
def fft_r2c(x, dim, normalization, onesided):
    """Forward transform of a real signal; ``onesided`` keeps the last dim's first
    ``n // 2 + 1`` outputs (the rest are their conjugates)."""
    x, axes, norm = fl(x), tuple(dim), _FORWARD[normalization]
    if onesided:
        return jnp.fft.rfftn(x, axes=axes, norm=norm)
    return jnp.fft.fftn(_complex(x), axes=axes, norm=norm)


@op("aten._fft_c2r.default")
def fft_c2r(x, dim, normalization, last_dim_size):
    """Inverse transform of a onesided Hermitian signal to a real one, ``last_dim_size`` long
    along the last of ``dim``."""
    axes = tuple(dim)
    sizes = (*(x.shape[d] for d in axes[:-1]), last_dim_size)
    return jnp.fft.irfftn(_complex(x), s=sizes, axes=axes, norm=_INVERSE[normalization])


@op("aten._fft_c2c.default")
def fft_c2c(x, dim, normalization, forward):
    """Complex-to-complex transform, forward (``exp(-2 pi i ...)``) or inverse."""
    norm = (_FORWARD if forward else _INVERSE)[normalization]
    fn = jnp.fft.fftn if forward else jnp.fft.ifftn
    return fn(_complex(x), axes=tuple(dim), norm=norm)
