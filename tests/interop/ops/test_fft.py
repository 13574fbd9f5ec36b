"""FFTs and complex numbers through ``interop.lower``: every ``torch.fft`` function in each
normalisation, the layers that use them (GFNet's global filter, FNO's spectral convolution,
FFC's Fourier unit) with a dynamic batch, under ``jax.jit`` and ``jax.grad``, and complex128
under ``jax_enable_x64``."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import interop
from tests.interop.ops.lowering_fn import Fn

_g = torch.Generator().manual_seed(0)


def r(*shape, dtype=torch.float32):
    return torch.randn(*shape, generator=_g, dtype=dtype)


def _check(fn, x: torch.Tensor, atol: float = 1e-5) -> None:
    forward, params = interop.lower(Fn(fn), x, dynamic_batch=False)
    got = np.asarray(jax.jit(forward)(params, jnp.asarray(x.numpy())))
    want = fn(x).resolve_conj().numpy()
    assert got.dtype == (np.complex64 if np.iscomplexobj(want) else np.float32)
    np.testing.assert_allclose(got, want, atol=atol, rtol=1e-5)


fft = torch.fft
CASES = {
    "fft": lambda x, n: fft.fft(x, norm=n),
    "fft-n": lambda x, n: fft.fft(x, n=9, dim=1, norm=n),
    "ifft": lambda x, n: fft.ifft(x, norm=n),
    "rfft": lambda x, n: fft.rfft(x, norm=n),
    "irfft-odd": lambda x, n: fft.irfft(fft.rfft(x), n=7, norm=n),
    "irfft-even": lambda x, n: fft.irfft(fft.fft(x), n=10, norm=n),
    "hfft": lambda x, n: fft.hfft(fft.rfft(x), norm=n),
    "ihfft": lambda x, n: fft.ihfft(x, norm=n),
    "fft2": lambda x, n: fft.fft2(x, norm=n),
    "ifft2-complex": lambda x, n: fft.ifft2(fft.fft(x), norm=n),
    "rfft2": lambda x, n: fft.rfft2(x, norm=n),
    "irfft2": lambda x, n: fft.irfft2(fft.rfft2(x), s=(4, 6), norm=n),
    "fftn-3d": lambda x, n: fft.fftn(x, dim=(0, 2, 1), norm=n),
    "rfftn": lambda x, n: fft.rfftn(x, s=(3, 8), dim=(0, 2), norm=n),
    "irfftn": lambda x, n: fft.irfftn(fft.fftn(x), dim=(1, 2), norm=n),
    "hfftn": lambda x, n: fft.hfftn(fft.rfft(x), dim=(0, 2), norm=n),
    "ihfftn": lambda x, n: fft.ihfftn(x, dim=(1, 2), norm=n),
}


#: every primitive in every direction: r2c full and onesided, c2r, c2c forward and inverse
CORE = ("fft", "rfft", "irfft-odd", "irfft-even", "ifft2-complex", "fftn-3d", "hfft", "ihfft")


@pytest.mark.parametrize(
    ("name", "norm"),
    [(n, "backward") for n in sorted(CASES)]
    + [(n, norm) for n in CORE for norm in ("ortho", "forward")],
)
def test_torch_fft_functions_match(name: str, norm: str) -> None:
    """Each ``torch.fft`` function lowers to ATen's r2c / c2r / c2c with its normalisation
    and onesided flag, and gives torch's numbers."""
    x = r(3, 4, 6)
    _check(lambda t: CASES[name](t, norm), x, atol=1e-4 if norm == "forward" else 1e-5)


def test_complex_parts_and_conversions_match() -> None:
    def fn(x):
        z = fft.fft(x)
        w = torch.complex(x, x.flip(-1)) * z.conj()
        parts = torch.view_as_real(w) + torch.polar(x.abs(), x)[..., None].real
        return torch.cat([parts.flatten(), w.angle().flatten(), w.abs().flatten()])

    _check(fn, r(3, 5), atol=1e-4)


class _GlobalFilter(torch.nn.Module):
    """GFNet's global filter: a learned complex filter in the 2-D Fourier domain."""

    def __init__(self, dim: int = 4, h: int = 6, w: int = 4) -> None:
        super().__init__()
        self.complex_weight = torch.nn.Parameter(r(h, w, dim, 2) * 0.5)

    def forward(self, x):
        h, w = x.shape[1:3]
        y = torch.fft.rfft2(x, dim=(1, 2), norm="ortho")
        y = y * torch.view_as_complex(self.complex_weight)
        return torch.fft.irfft2(y, s=(h, w), dim=(1, 2), norm="ortho")


class _SpectralConv(torch.nn.Module):
    """FNO's spectral convolution: complex64 weights on the lowest Fourier modes."""

    def __init__(self, cin: int = 3, cout: int = 4, m1: int = 3, m2: int = 2) -> None:
        super().__init__()
        self.m1, self.m2, self.cout = m1, m2, cout
        self.w1 = torch.nn.Parameter(r(cin, cout, m1, m2, dtype=torch.cfloat) / 3)
        self.w2 = torch.nn.Parameter(r(cin, cout, m1, m2, dtype=torch.cfloat) / 3)

    def forward(self, x):
        m1, m2 = self.m1, self.m2
        x_ft = torch.fft.rfft2(x)
        shape = (x.shape[0], self.cout, x.size(-2), x.size(-1) // 2 + 1)
        out = torch.zeros(shape, dtype=torch.cfloat)
        out[:, :, :m1, :m2] = torch.einsum("bixy,ioxy->boxy", x_ft[:, :, :m1, :m2], self.w1)
        out[:, :, -m1:, :m2] = torch.einsum("bixy,ioxy->boxy", x_ft[:, :, -m1:, :m2], self.w2)
        return torch.fft.irfft2(out, s=(x.size(-2), x.size(-1)))


class _FourierUnit(torch.nn.Module):
    """FFC's (LaMa's) Fourier unit: a 1x1 convolution on the real and imaginary parts."""

    def __init__(self, c: int = 3) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(2 * c, 2 * c, 1)

    def forward(self, x):
        b, _, h, w = x.shape
        f = torch.fft.rfftn(x, dim=(-2, -1), norm="ortho")
        f = torch.stack((f.real, f.imag), dim=-1).permute(0, 1, 4, 2, 3)
        f = torch.relu(self.conv(f.reshape(b, -1, h, w // 2 + 1)))
        f = f.view(b, -1, 2, h, w // 2 + 1).permute(0, 1, 3, 4, 2).contiguous()
        return torch.fft.irfftn(torch.complex(f[..., 0], f[..., 1]), s=(h, w), dim=(-2, -1))


LAYERS = {
    "gfnet": (_GlobalFilter, (6, 6, 4)),
    "fno": (_SpectralConv, (3, 8, 6)),
    "ffc": (_FourierUnit, (3, 8, 7)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_fourier_layers_match_torch_with_a_dynamic_batch(name: str) -> None:
    cls, shape = LAYERS[name]
    torch.manual_seed(0)
    module = cls().eval()
    forward, params = interop.lower(module, r(2, *shape))
    run = jax.jit(forward)
    for batch in (1, 3):
        x = r(batch, *shape)
        with torch.no_grad():
            want = module(x).numpy()
        np.testing.assert_allclose(np.asarray(run(params, jnp.asarray(x.numpy()))), want, atol=2e-5)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_fourier_layer_gradients_match_torch_autograd(name: str) -> None:
    """jax.grad through r2c, complex products (complex64 params included) and c2r equals
    torch autograd, for the params and the input."""
    cls, shape = LAYERS[name]
    module = cls().eval()
    x = r(2, *shape)
    forward, params = interop.lower(module, x)

    def loss(p, xx):
        return jnp.sum(jnp.sin(forward(p, xx)))

    gp, gx = jax.grad(loss, argnums=(0, 1))(params, jnp.asarray(x.numpy()))
    xt = x.clone().requires_grad_(True)
    torch.sin(module(xt)).sum().backward()
    np.testing.assert_allclose(np.asarray(gx), xt.grad.numpy(), atol=1e-4)
    for key, p in module.named_parameters():
        want = p.grad.numpy()
        got = np.asarray(gp[key])
        if np.iscomplexobj(want):
            # torch's gradient of a real loss in a complex param is conj(dL/dz); JAX's is dL/dz
            got = np.conj(got)
        np.testing.assert_allclose(got, want, atol=1e-4, err_msg=key)


def test_complex128_under_x64() -> None:
    """float64 signals give complex128 spectra when jax_enable_x64 is on (complex64 off)."""

    def fn(x):
        return torch.fft.fft(x) * torch.fft.ifft(x.flip(-1), norm="ortho")

    x = r(3, 8, dtype=torch.float64)
    want = fn(x).numpy()
    with jax.enable_x64(True):
        forward, params = interop.lower(Fn(fn), x, dynamic_batch=False)
        got = np.asarray(forward(params, jnp.asarray(x.numpy())))
    assert got.dtype == np.complex128
    np.testing.assert_allclose(got, want, atol=1e-12)
    forward, params = interop.lower(Fn(fn), x, dynamic_batch=False)
    got = np.asarray(forward(params, jnp.asarray(x.numpy().astype(np.float32))))
    assert got.dtype == np.complex64
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_complex32_is_refused_not_crashed() -> None:
    """torch's complex32 has no JAX dtype: a LoweringError naming it, at lowering time."""

    def fn(x):
        return torch.view_as_real(torch.view_as_complex(x.half()) * 2).float()

    with (
        warnings.catch_warnings(),
        pytest.raises(interop.LoweringError, match=r"torch\.complex32 has no JAX dtype"),
    ):
        warnings.simplefilter("ignore", UserWarning)  # torch: "ComplexHalf ... is experimental"
        interop.lower(Fn(fn), r(3, 2), dynamic_batch=False)
