"""The lowering's op table, op by op, against the ATen op itself on small random inputs.

Every ``aten.*`` entry of the op table (``interop.lowering.OPS``) has at least one case here (checked by
``test_every_aten_op_has_a_case``); the Python/sym entries (``operator.mul`` on sizes, ...) are
the builtins themselves and run inside every dynamic-batch graph in ``test_lower.py``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch.utils import _pytree as tpytree

import interop
from interop._src.lowering.ops import RANDOM, RECORDED, TABLE
from interop._src.lowering.ops import attention as _attention
from interop._src.lowering.ops import conv as _conv
from tests.interop.lower_cases_nn import NN_CASES

aten = torch.ops.aten
_g = torch.Generator().manual_seed(0)


def r(*shape):
    return torch.randn(*shape, generator=_g)


def pos(*shape):
    return torch.rand(*shape, generator=_g) + 0.1


def ints(*shape, lo=-5, hi=6):
    return torch.randint(lo, hi, shape, generator=_g)


def bools(*shape):
    return torch.rand(*shape, generator=_g) > 0.5


def nz(*shape):
    """Random values away from zero (divisors)."""
    x = r(*shape)
    return x + torch.sign(x) * 0.5


def special(*shape):
    x = r(*shape)
    x.view(-1)[0], x.view(-1)[1] = float("nan"), float("inf")
    return x


# (name, case id, args, kwargs); args are built once at import (seeded)
CASES: list[tuple[str, str, tuple, dict]] = []


def case(name: str, *args, id: str = "", **kwargs) -> None:
    CASES.append((name, id, args, kwargs))


x34, y34 = r(3, 4), r(3, 4)
# arithmetic
case("aten.add.Tensor", x34, r(4), alpha=2)
case("aten.add.Scalar", x34, 2.5)
case("aten.sub.Tensor", x34, y34, alpha=3)
case("aten.sub.Scalar", x34, 1.5)
case("aten.rsub.Scalar", x34, 2.0)
case("aten.rsub.Tensor", x34, y34, alpha=2)
case("aten.mul.Tensor", x34, y34)
case("aten.mul.Tensor", ints(3, 4), 0.5, id="int*float")
case("aten.mul.Scalar", x34, -3.0)
case("aten.div.Tensor", x34, nz(3, 4))
case("aten.div.Tensor", ints(3, 4), ints(3, 4, lo=1), id="int/int")
case("aten.div.Scalar", x34, 3.0)
case("aten.div.Tensor_mode", 4 * x34, nz(3, 4), rounding_mode="floor")
case("aten.div.Tensor_mode", 4 * x34, nz(3, 4), rounding_mode="trunc", id="trunc")
case("aten.div.Tensor_mode", ints(3, 4), ints(3, 4, lo=1), rounding_mode="trunc", id="int-trunc")
case("aten.div.Scalar_mode", 4 * x34, 0.7, rounding_mode="floor")
case("aten.floor_divide.default", 4 * x34, nz(3, 4))
case("aten.floor_divide.Scalar", ints(3, 4), 3)
case("aten.remainder.Tensor", 4 * x34, nz(3, 4))
case("aten.remainder.Scalar", ints(3, 4), 3)
case("aten.fmod.Tensor", 4 * x34, nz(3, 4))
case("aten.fmod.Scalar", 4 * x34, 1.5)
case("aten.pow.Tensor_Scalar", x34, 2)
case("aten.pow.Tensor_Scalar", pos(3, 4), 0.5, id="sqrt")
case("aten.pow.Tensor_Tensor", pos(3, 4), r(3, 4))
case("aten.pow.Scalar", 2.0, r(3, 4))
for _name, _arg in {
    "neg": x34,
    "abs": x34,
    "sign": x34,
    "reciprocal": nz(3, 4),
    "sqrt": pos(3, 4),
    "rsqrt": pos(3, 4),
    "exp": x34,
    "expm1": x34,
    "log": pos(3, 4),
    "log1p": pos(3, 4),
    "log2": pos(3, 4),
    "sin": x34,
    "cos": x34,
    "tanh": x34,
    "erf": x34,
    "floor": 3 * x34,
    "ceil": 3 * x34,
    "round": torch.tensor([0.5, 1.5, 2.5, -0.5, -1.7, 2.2]),
    "trunc": 3 * x34,
    "relu": x34,
    "sigmoid": x34,
    "silu": x34,
    "hardsigmoid": 4 * x34,
    "hardswish": 4 * x34,
    "isnan": special(3, 4),
    "isinf": special(3, 4),
    "logical_not": bools(3, 4),
    "bitwise_not": ints(3, 4),
}.items():
    case(f"aten.{_name}.default", _arg)
case("aten.bitwise_not.default", bools(3, 4), id="bool")
case("aten.rsqrt.default", ints(3, 4, lo=1), id="int")
case("aten.clamp.default", x34, -0.5, 0.5)
case("aten.clamp.default", x34, None, 0.2, id="max-only")
case("aten.clamp.Tensor", x34, r(3, 4) - 0.5, r(3, 4) + 0.5)
case("aten.clamp_min.default", x34, 0.1)
case("aten.clamp_max.default", x34, 0.1)
case("aten.maximum.default", x34, y34)
case("aten.minimum.default", x34, y34)
# elementwise math, special functions, complex numbers and FFTs (issue 22)
unit34 = torch.rand(3, 4, generator=_g) * 1.8 - 0.9
gam34 = torch.where(ints(3, 4) > 0, 4 * pos(3, 4), -3 * pos(3, 4) + 0.05)  # off the poles
for _name, _arg in {
    "log10": pos(3, 4),
    "exp2": x34,
    "tan": x34,
    "asin": unit34,
    "acos": unit34,
    "atan": 3 * x34,
    "sinh": x34,
    "cosh": x34,
    "asinh": 3 * x34,
    "acosh": 1 + 3 * pos(3, 4),
    "atanh": unit34,
    "erfc": x34,
    "erfinv": unit34,
    "lgamma": gam34,
    "digamma": gam34,
    "i0": 3 * x34,
    "special_i0e": 3 * x34,
    "special_i1": 3 * x34,
    "special_i1e": 3 * x34,
    "special_ndtri": torch.rand(3, 4, generator=_g),
    "special_erfcx": 3 * x34,
    "signbit": torch.tensor([0.0, -0.0, -1.5, 2.0, float("-inf"), float("nan")]),
    "angle": torch.tensor([0.0, -0.0, -1.5, 2.0, float("-inf"), float("nan")]),
}.items():
    case(f"aten.{_name}.default", _arg)
case("aten.signbit.default", ints(3, 4), id="int")
case("aten.acos.default", ints(3, 4, lo=-1, hi=2), id="int")
for _n in range(4):
    case("aten.polygamma.default", _n, gam34, id=f"n{_n}")
case("aten.special_zeta.default", 1 + 3 * pos(3, 4), gam34.abs())
case("aten.special_zeta.self_scalar", 2.5, 3 * pos(3, 4))
case("aten.special_zeta.other_scalar", 1 + 3 * pos(3, 4), 1.5)
case("aten.igamma.default", 3 * pos(3, 4), 3 * pos(3, 4))
case("aten.igammac.default", 3 * pos(3, 4), 3 * pos(3, 4))
case("aten.atan2.default", x34, y34)
case("aten.hypot.default", x34, y34)
case("aten.round.decimals", 100 * x34, decimals=2)
case("aten.round.decimals", 1000 * x34, decimals=-2, id="negative")
case("aten.copysign.Tensor", x34, y34)
case("aten.copysign.Scalar", x34, -1.0)
case("aten.fmax.default", special(3, 4), special(3, 4).flip(0))
case("aten.fmin.default", special(3, 4), special(3, 4).flip(0))
case("aten.nextafter.default", x34, y34)
case("aten.frexp.Tensor", 100 * x34)
case("aten.ldexp.Tensor", x34, ints(3, 4))
case("aten.gcd.default", ints(3, 4, lo=-20, hi=20), ints(3, 4, lo=-20, hi=20))
case("aten.lcm.default", ints(3, 4, lo=-20, hi=20), ints(3, 4, lo=-20, hi=20))
case("aten.clamp_min.Tensor", x34, y34)
case("aten.clamp_max.Tensor", x34, y34)
for _dir in ("left", "right"):
    _sh = f"aten.bitwise_{_dir}_shift"
    case(f"{_sh}.Tensor", ints(3, 4, lo=-99, hi=99).int(), ints(3, 4, lo=-2, hi=34).int())
    case(
        f"{_sh}.Tensor",
        ints(3, 4, lo=0, hi=255).to(torch.uint8),
        ints(3, 4, lo=-1, hi=9).to(torch.uint8),
        id="u8",
    )
    case(f"{_sh}.Tensor_Scalar", ints(3, 4, lo=-99, hi=99), 3)
    case(f"{_sh}.Scalar_Tensor", 5, ints(3, 4, lo=0, hi=8))
    case(f"aten.__{_dir[0]}shift__.Tensor", ints(3, 4, lo=-99, hi=99), ints(3, 4, lo=0, hi=9))
    case(f"aten.__{_dir[0]}shift__.Scalar", ints(3, 4, lo=-99, hi=99), 2)
for _name in (
    "bessel_j0",
    "bessel_j1",
    "bessel_y0",
    "bessel_y1",
    "modified_bessel_i0",
    "modified_bessel_i1",
    "modified_bessel_k0",
    "modified_bessel_k1",
    "scaled_modified_bessel_k0",
    "scaled_modified_bessel_k1",
    "spherical_bessel_j0",
    "airy_ai",
):
    case(f"aten.special_{_name}.default", torch.linspace(-12, 12, 49))
_deg = torch.tensor([[0.0, 1, 2, 3], [5, 7, 9, 12], [-1, 4, 10, 6]])
for _kind in ("chebyshev_polynomial_", "shifted_chebyshev_polynomial_"):
    for _name in (_kind + k for k in "tuvw"):
        case(f"aten.special_{_name}.default", torch.linspace(-1.2, 1.2, 12).view(3, 4), _deg)
        case(f"aten.special_{_name}.x_scalar", 0.3, _deg)
        case(f"aten.special_{_name}.n_scalar", torch.linspace(-1.2, 1.2, 12).view(3, 4), 7)
for _name in ("hermite_polynomial_h", "hermite_polynomial_he", "laguerre_polynomial_l"):
    case(f"aten.special_{_name}.default", x34, _deg)
    case(f"aten.special_{_name}.x_scalar", 0.7, _deg)
    case(f"aten.special_{_name}.n_scalar", x34, 5)
case("aten.special_legendre_polynomial_p.default", unit34, _deg)
case("aten.special_legendre_polynomial_p.x_scalar", -0.4, _deg)
case("aten.special_legendre_polynomial_p.n_scalar", unit34, 9)
c34 = torch.complex(x34, y34)
s345 = r(3, 4, 5)
case("aten.complex.default", x34, y34)
case("aten.polar.default", pos(3, 4), 3 * x34)
case("aten.view_as_real.default", c34)
case("aten.view_as_complex.default", r(3, 4, 2))
case("aten.angle.default", c34, id="complex")
for _name in ("_conj", "_conj_physical", "conj_physical"):
    case(f"aten.{_name}.default", c34)
case("aten._fft_r2c.default", s345, [2], 0, True)
case("aten._fft_r2c.default", s345, [0, 2], 2, False, id="full-by-n")
case("aten._fft_r2c.default", s345, [2, 1], 1, True, id="ortho-2d")
case("aten._fft_c2r.default", torch.complex(s345, s345.flip(2)), [2], 0, 8)
case("aten._fft_c2r.default", torch.complex(s345, s345.flip(0)), [0, 2], 2, 9, id="2d-odd-by-n")
case("aten._fft_c2c.default", torch.complex(s345, s345.flip(1)), [2], 1, True)
case("aten._fft_c2c.default", torch.complex(s345, s345.flip(1)), [0, 2], 2, False, id="inverse")
# activations
case("aten.gelu.default", 3 * x34)
case("aten.gelu.default", 3 * x34, approximate="tanh", id="tanh")
case("aten.gelu.default", 12 * r(6, 7), id="tails")
case("aten.gelu.default", (3 * r(6, 7)).bfloat16(), id="bf16")
case("aten.hardtanh.default", 8 * x34, 0.0, 6.0)
case("aten.hardtanh.default", x34, id="defaults")
case("aten.leaky_relu.default", x34, 0.2)
case("aten.elu.default", x34, 1.5, 1.2, 0.8)
case("aten.softplus.default", 10 * x34, 2.0, 5.0)
case("aten._softmax.default", r(2, 3, 5), -1, False)
case("aten._log_softmax.default", r(2, 3, 5), 1, False)
# comparison and logic
for _cmp in ("eq", "ne", "lt", "le", "gt", "ge"):
    case(f"aten.{_cmp}.Tensor", ints(3, 4), ints(3, 4))
    case(f"aten.{_cmp}.Scalar", ints(3, 4), 1)
for _lg in ("and", "or", "xor"):
    case(f"aten.logical_{_lg}.default", bools(3, 4), bools(3, 4))
    case(f"aten.bitwise_{_lg}.Tensor", ints(3, 4, lo=0, hi=16), ints(3, 4, lo=0, hi=16))
    case(f"aten.bitwise_{_lg}.Tensor", bools(3, 4), bools(3, 4), id="bool")
    case(f"aten.bitwise_{_lg}.Scalar", ints(3, 4, lo=0, hi=16), 5)
case("aten.where.self", bools(3, 4), x34, y34)
case("aten.where.ScalarSelf", bools(3, 4), 1.5, y34)
case("aten.where.ScalarOther", bools(3, 4), x34, -1.0)
case("aten.where.Scalar", bools(3, 4), 1.0, 0.0)
case("aten.masked_fill.Scalar", x34, bools(3, 4), -1e4)
case("aten.masked_fill.Tensor", x34, bools(1, 4), torch.tensor(2.0))
# reductions
x345 = r(3, 4, 5)
case("aten.sum.dim_IntList", x345, [1, 2], True)
case("aten.sum.dim_IntList", bools(3, 4), [1], id="bool")
case("aten.sum.default", x345)
case("aten.mean.dim", x345, [-1], True)
case("aten.mean.default", x345)
case("aten.prod.dim_int", pos(3, 4), 1, True)
case("aten.prod.default", pos(3, 4))
case("aten.var.correction", x345, [1], correction=0, keepdim=True)
case("aten.var.correction", x345, [2], id="default-correction")
case("aten.var_mean.correction", x345, [2], correction=1)
case("aten.amax.default", x345, [1])
case("aten.amin.default", x345, [0, 2], True)
case("aten.max.dim", x345, 1)
case("aten.min.dim", x345, 2, True)
case("aten.max.default", x345)
case("aten.min.default", x345)
case("aten.argmax.default", x345, 1)
case("aten.argmin.default", x345, 2, True)
case("aten.argmax.default", x345, id="flat")
case("aten.any.default", bools(3, 4))
case("aten.any.dim", bools(3, 4), 1)
case("aten.any.dims", bools(3, 4, 2), [0, 2], True)
case("aten.all.default", bools(3, 4))
case("aten.all.dim", bools(3, 4), 0, True)
case("aten.all.dims", bools(3, 4, 2), [1])
case("aten.cumsum.default", x345, 1)
case("aten.linalg_vector_norm.default", x345, 2, [1])
case("aten.linalg_vector_norm.default", x345, 1, [1, 2], True, id="l1")
# matmul, normalisation, attention
case("aten.mm.default", r(3, 5), r(5, 4))
case("aten.bmm.default", r(2, 3, 5), r(2, 5, 4))
case("aten.matmul.default", r(2, 3, 5), r(5, 4))
case("aten.addmm.default", r(4), r(3, 5), r(5, 4))
case("aten.addmm.default", r(3, 4), r(3, 5), r(5, 4), beta=0.5, alpha=2.0, id="beta-alpha")
case("aten.baddbmm.default", r(2, 3, 4), r(2, 3, 5), r(2, 5, 4), beta=0.0)
case("aten.linear.default", r(2, 3, 5), r(4, 5), r(4))
# linear algebra (batched, broadcast, singular and low-precision cases: test_lower_linalg.py)
sq = r(2, 4, 4)
spd = sq @ sq.mT + 4 * torch.eye(4)
chol = torch.linalg.cholesky(spd)
tri = torch.triu(r(2, 4, 4)) + 4 * torch.eye(4)
lu_, piv_ = torch.linalg.lu_factor(sq)
qr_a, qr_tau = torch.geqrf(r(5, 3))
case("aten.addmv.default", r(3), r(3, 5), r(5), beta=0.5, alpha=2.0)
case("aten.addbmm.default", r(3, 4), r(2, 3, 5), r(2, 5, 4), beta=0.5, alpha=2.0)
case("aten.addbmm.default", r(4), r(2, 3, 5), r(2, 5, 4), id="broadcast")
case("aten.trace.default", r(3, 5))
case("aten._linalg_svd.default", r(2, 5, 3), False, False, id="values")
case("aten.linalg_qr.default", r(2, 5, 3))
case("aten.linalg_qr.default", r(5, 3), "complete", id="complete")
case("aten.geqrf.default", r(2, 5, 3))
case("aten.linalg_householder_product.default", qr_a, qr_tau)
case("aten.ormqr.default", qr_a, qr_tau, r(5, 2), True, True)
case("aten._linalg_eigh.default", spd, "U", False, id="values-U")
case("aten.linalg_eig.default", tri)
case("aten.linalg_matrix_sqrth.default", spd)
case("aten.linalg_polar.default", tri)
case("aten.linalg_cholesky_ex.default", spd, upper=True)
case("aten.linalg_lu_factor_ex.default", r(2, 5, 3))
case("aten.linalg_lu.default", r(2, 3, 5))
case("aten.lu_unpack.default", lu_, piv_)
case("aten._linalg_det.default", sq)
case("aten._linalg_slogdet.default", sq)
case("aten.linalg_matrix_exp.default", 0.3 * sq)
case("aten._linalg_check_errors.default", torch.zeros(2, dtype=torch.int32), "t", is_matrix=False)
case("aten._linalg_solve_ex.default", sq, r(2, 4, 3))
case("aten._linalg_solve_ex.default", sq, r(3, 4), left=False, id="right")
case("aten.linalg_inv_ex.default", sq)
case("aten.linalg_lu_solve.default", lu_, piv_, r(2, 4, 3), adjoint=True)
case("aten.linalg_solve_triangular.default", tri, r(4, 3), upper=True)
case("aten.triangular_solve.default", r(2, 4, 3), tri, True, True)
case("aten.cholesky_solve.default", r(2, 4, 3), chol)
case("aten.cholesky_inverse.default", chol[0])
case("aten.linalg_pinv.atol_rtol_tensor", r(2, 5, 3))
sym = sq + sq.mT
sym[:, range(4), range(4)] = 0  # Bunch-Kaufman takes 2x2 blocks
ld_, ldpiv_ = torch.linalg.ldl_factor(sym)
case("aten.linalg_ldl_factor_ex.default", sym)
case("aten.linalg_ldl_solve.default", ld_, ldpiv_, r(4, 3))
case("aten.native_layer_norm.default", r(2, 3, 8), [8], r(8), r(8), 1e-5)
case("aten.native_layer_norm.default", r(2, 3, 8), [3, 8], None, None, 0.1, id="eps-2d")
case("aten.native_group_norm.default", r(2, 6, 4, 4), r(6), r(6), 2, 6, 16, 3, 1e-5)
case(
    "aten._native_batch_norm_legit_no_training.default",
    r(2, 3, 4, 4),
    r(3),
    r(3),
    r(3),
    pos(3),
    0.1,
    1e-3,
)
case(
    "aten._native_batch_norm_legit.no_stats", 3 * r(2, 3, 4, 5, 2) + 1, r(3), r(3), True, 0.1, 1e-5
)
case(
    "aten._native_batch_norm_legit.no_stats", r(1, 6, 3, 3), None, None, True, 0.1, 1e-3, id="none"
)
_bn_train = "aten._native_batch_norm_legit_functional.default"
case(_bn_train, 3 * r(4, 3, 5, 5) + 1, r(3), r(3), r(3), pos(3), True, 0.1, 1e-5)
case(_bn_train, r(2, 3, 7), None, None, r(3), pos(3), True, 0.3, 1e-3, id="1d-no-affine")
case(_bn_train, r(2, 3, 4, 4), r(3), r(3), r(3), pos(3), False, 0.1, 1e-5, id="not-training")
_q, _k, _v = r(2, 2, 5, 8), r(2, 2, 6, 8), r(2, 2, 6, 8)
_fl = "aten._scaled_dot_product_flash_attention_for_cpu.default"
case(_fl, _q, _k, _v)
case(_fl, _q, _k, _v, attn_mask=r(5, 6), scale=0.3, id="mask")
case(_fl, _q, _q, _q, is_causal=True, id="causal")
case("aten.scaled_dot_product_attention.default", _q, _k, _v, bools(5, 6) | (torch.arange(6) == 0))
# convolution (the depthwise cases run the multiply-add rewrite; see test_depthwise_paths_agree)
_conv_cases = {
    "plain": (r(2, 3, 9, 9), r(4, 3, 3, 3), r(4), [1, 1], [1, 1], [1, 1], False, [0, 0], 1),
    "stride-dilation": (
        r(2, 3, 11, 11),
        r(4, 3, 3, 3),
        None,
        [2, 2],
        [2, 2],
        [2, 2],
        False,
        [0, 0],
        1,
    ),
    "groups": (r(2, 4, 8, 8), r(6, 2, 3, 3), r(6), [1, 1], [0, 0], [1, 1], False, [0, 0], 2),
    "depthwise3": (r(2, 4, 9, 9), r(4, 1, 3, 3), r(4), [1, 1], [1, 1], [1, 1], False, [0, 0], 4),
    "depthwise5-s2": (
        r(2, 4, 10, 10),
        r(4, 1, 5, 5),
        None,
        [2, 2],
        [2, 2],
        [1, 1],
        False,
        [0, 0],
        4,
    ),
    "depthwise-dil": (r(1, 3, 9, 9), r(3, 1, 3, 3), None, [1, 1], [2, 2], [2, 2], False, [0, 0], 3),
    "1d": (r(2, 3, 10), r(4, 3, 3), r(4), [2], [1], [1], False, [0], 1),
    "transposed": (r(2, 4, 5, 5), r(4, 3, 3, 3), r(3), [2, 2], [1, 1], [1, 1], True, [1, 1], 1),
    "transposed-groups": (
        r(1, 4, 5, 5),
        r(4, 2, 2, 2),
        None,
        [2, 2],
        [0, 0],
        [1, 1],
        True,
        [0, 0],
        2,
    ),
    "3d": (
        r(1, 2, 4, 5, 5),
        r(3, 2, 2, 3, 3),
        r(3),
        [1, 1, 1],
        [0, 1, 1],
        [1, 1, 1],
        False,
        [0, 0, 0],
        1,
    ),
}
for _id, _args in _conv_cases.items():
    case("aten.convolution.default", *_args, id=_id)
x_img = r(2, 3, 9, 9)
case("aten.max_pool2d_with_indices.default", x_img, [3, 3], [2, 2], [1, 1])
case("aten.max_pool2d_with_indices.default", x_img, [2, 2], [2, 2], [0, 0], [1, 1], True, id="ceil")
case("aten.max_pool2d_with_indices.default", x_img, [3, 3], [], [1, 1], [2, 2], id="dil-defstride")
case("aten.max_pool2d.default", x_img, [3, 3], [2, 2], [1, 1], [1, 1], True)
case("aten.avg_pool2d.default", x_img, [3, 3], [2, 2], [1, 1])
case("aten.avg_pool2d.default", x_img, [3, 3], [2, 2], [1, 1], True, False, id="ceil-nopad")
case("aten.avg_pool2d.default", x_img, [2, 2], [2, 2], [0, 0], True, True, id="ceil-pad")
case("aten.avg_pool2d.default", x_img, [3, 3], [1, 1], [1, 1], False, True, 4, id="divisor")
case("aten._adaptive_avg_pool2d.default", r(2, 3, 7, 9), [3, 4])
case("aten._adaptive_avg_pool2d.default", r(2, 3, 8, 8), [2, 2], id="divisible")
case("aten.adaptive_avg_pool2d.default", r(2, 3, 8, 8), [1, 1])
x_small = r(2, 3, 5, 6)
for _kind, _ac in (("bicubic", False), ("bicubic", True), ("bilinear", False), ("bilinear", True)):
    case(f"aten.upsample_{_kind}2d.vec", x_small, [9, 7], _ac, None, id=f"size-ac{_ac}")
    case(f"aten.upsample_{_kind}2d.vec", x_small, None, _ac, [2.0, 1.5], id=f"scale-ac{_ac}")
    case(f"aten.upsample_{_kind}2d.default", x_small, [8, 4], _ac, 1.5, 0.75, id=f"ac{_ac}")
    for _size in ([9, 11], [3, 4]):  # up and down (antialiasing matters downwards)
        case(f"aten._upsample_{_kind}2d_aa.vec", x_small, _size, _ac, None, id=f"{_size}-ac{_ac}")
    case(f"aten._upsample_{_kind}2d_aa.default", x_small, [3, 4], _ac, id=f"ac{_ac}")
case("aten.upsample_nearest2d.vec", x_small, [9, 4], None)
case("aten.upsample_nearest2d.vec", x_small, None, [2.0, 0.5], id="scale")
case("aten._upsample_nearest_exact2d.vec", x_small, [9, 4], None)
# shapes and views
case("aten.view.default", x345, [3, 20])
case("aten._unsafe_view.default", x345, [-1, 5])
case("aten.reshape.default", x345, [5, -1])
case("aten.view_copy.default", x345, [60])
case("aten.permute.default", x345, [2, 0, 1])
case("aten.transpose.int", x345, 0, 2)
case("aten.t.default", x34)
case("aten.expand.default", r(1, 4, 1), [2, -1, 3])
case("aten.expand.default", r(4), [3, 2, 4], id="new-dims")
for _name in ("clone", "alias", "lift_fresh_copy", "detach", "contiguous"):
    case(f"aten.{_name}.default", x34)
case("aten._to_copy.default", x34, dtype=torch.float16)
case("aten._to_copy.default", 4 * x34, dtype=torch.int32, id="to-int")
case("aten._to_copy.default", x34, id="no-dtype")
case("aten.unsqueeze.default", x34, -1)
case("aten.unsqueeze.default", x34, 1, id="mid")
case("aten.squeeze.dims", r(3, 1, 4, 1), [1, 2, 3])
case("aten.squeeze.dim", r(3, 1, 4), 1)
case("aten.squeeze.default", r(1, 3, 1, 4))
case("aten.squeeze.dim", torch.tensor(1.5), -1, id="0-d")
case("aten.squeeze.dims", torch.tensor(1.5), [0], id="0-d")
case("aten.squeeze.default", torch.tensor(1.5), id="0-d")
case("aten.cat.default", [x34, y34, r(3, 2)], 1)
case("aten.cat.default", [x34, torch.zeros(0)], id="legacy-empty")
case("aten.cat.default", [x34, ints(3, 4)], 0, id="promote")
case("aten.stack.default", [x34, y34], 1)
case("aten.slice.Tensor", x345, 1, 1, 9223372036854775807)
case("aten.slice.Tensor", x345, 2, -4, -1, 2, id="neg-step")
case("aten.slice.Tensor", x345, -1, -9, 3, id="clamp-start")
case("aten.slice.Tensor", x345, 1, 3, 1, id="end-before-start")
case("aten.slice.Tensor", x345, 2, 7, 9223372036854775807, id="start-past-size")
case("aten.slice.Tensor", x345, 0, None, None, id="none")
case("aten.select.int", x345, 1, -1)
case("aten.split_with_sizes.default", x345, [1, 3], 1)
case("aten.split.Tensor", x345, 2, 2)
case("aten.unbind.int", x345, 1)
case("aten.constant_pad_nd.default", x345, [1, 2, 0, 1], 0.5)
case("aten.constant_pad_nd.default", x345, [-1, 2], id="crop")
case("aten.roll.default", x345, [1, -2], [1, 2])
case("aten.roll.default", x345, [3], id="flat")
case("aten.flip.default", x345, [0, 2])
case("aten.repeat.default", r(2, 3), [2, 1, 3])
case("aten.tril.default", r(4, 5), 1)
case("aten.triu.default", r(2, 4, 5), -1)
case("aten.as_strided.default", r(4, 6), [3, 2, 2], [6, 1, 2], 1)
# indexing
case("aten.index.Tensor", x345, [None, ints(2, 3, lo=0, hi=4)])
case("aten.index.Tensor", x345, [ints(2, lo=0, hi=3), None, ints(2, lo=0, hi=5)], id="split")
case("aten.index_select.default", x345, 2, ints(7, lo=0, hi=5))
case("aten.gather.default", x345, 1, ints(3, 2, 5, lo=0, hi=4))
case("aten.index_put.default", x345, [None, torch.tensor([0, 2])], r(3, 2, 5))
case("aten.index_put.default", x34, [torch.tensor([0, 0, 2])], r(3, 4), True, id="accumulate")
case("aten.slice_scatter.default", x345, r(3, 2, 5), 1, 1, None, 2)
case("aten.slice_scatter.default", x345, r(3, 4, 3), -1, -3, 9223372036854775807, id="to-end")
case("aten.select_scatter.default", x345, r(3, 5), 1, -1)
case("aten.embedding.default", r(10, 4), ints(2, 3, lo=0, hi=10))
# sorting, selection, scans, scatters, views and data-dependent shapes (issue 22, o-index)
_seq = torch.sort(r(3, 6), dim=1).values
_perm = torch.argsort(r(3, 4, 5), dim=0)[:2]  # distinct rows per column: no write overwritten
case("aten.sort.default", x345, 1, True)
case("aten.sort.stable", x345, stable=True, dim=0)
case("aten.topk.default", x345, 2, 1)
case("aten.topk.default", x345, 3, -1, False, id="smallest")
case("aten.kthvalue.default", x345, 2, 2, True)
case("aten.median.default", x345)
case("aten.median.dim", x345, 1, True)
case("aten.nanmedian.default", special(3, 4, 5))
case("aten.nanmedian.dim", special(3, 4, 5), 2)
case("aten.mode.default", ints(3, 9, lo=0, hi=3).float(), 1)
case("aten.searchsorted.Tensor", _seq, r(3, 4), right=True)
case("aten.searchsorted.Tensor", _seq[0], r(2, 4), side="left", id="1d")
case("aten.searchsorted.Scalar", _seq[0], 0.1)
case("aten.bucketize.Tensor", r(3, 4), _seq[0])
case("aten.bucketize.Scalar", 0.3, _seq[0], right=True)
case("aten.cumprod.default", x345, 2)
case("aten.cummax.default", x345, 1)
case("aten.cummin.default", x345, 0)
case("aten.logcumsumexp.default", x345, -1)
case("aten.scatter.src", x345, 0, _perm, r(2, 4, 5))
case("aten.scatter.value", x345, 0, _perm, 1.5)
case("aten.scatter.reduce", x345, 0, ints(2, 4, 5, lo=0, hi=3), r(2, 4, 5), reduce="add")
case("aten.scatter.value_reduce", x345, 0, ints(2, 4, 5, lo=0, hi=3), 2.0, reduce="multiply")
case("aten.scatter_add.default", x345, 1, ints(3, 6, 5, lo=0, hi=4), r(3, 6, 5))
case("aten.scatter_reduce.two", x345, 2, ints(3, 4, 7, lo=0, hi=5), r(3, 4, 7), "mean",
     include_self=False)  # fmt: skip
case("aten.scatter_reduce.two", x345, 2, ints(3, 2, 3, lo=0, hi=5), r(3, 2, 3), "amax", id="amax")
case("aten.index_reduce.default", x345, 1, torch.tensor([0, 2, 0]), r(3, 3, 5), "prod",
     include_self=False)  # fmt: skip
case("aten.masked_scatter.default", x345, bools(4, 5), r(60))
case("aten.put.default", x345, torch.tensor([0, 59, -1, 7]), r(4), True)
case("aten.diagonal_scatter.default", x345, r(3, 4), 1, 1, 2)
case("aten.diagonal.default", x345, -1, 2, 0)
case("aten.unfold.default", x345, 2, 2, 2)
case("aten.narrow_copy.default", x345, 1, -3, 2)
case("aten.as_strided_copy.default", r(4, 6), [3, 2], [1, 4], 2)
case("aten.as_strided_scatter.default", r(4, 6), r(3, 2), [3, 2], [6, 1], 1)
case("aten.nonzero_static.default", bools(3, 4), size=8)
# the ops whose output size only the data fixes take the recorded output (see test_op_matches_aten)
case("aten.nonzero.default", bools(3, 4))
case("aten.masked_select.default", x34, bools(3, 4))
case("aten._unique2.default", ints(12, lo=0, hi=5), True, True, True)
case("aten.unique_consecutive.default", torch.tensor([1, 1, 2, 2, 2, 1, 3, 3]), True, True)
case("aten.unique_dim.default", torch.tensor([[1, 2], [0, 5], [1, 2]]), 0, True, True, True)
case("aten._local_scalar_dense.default", torch.tensor(3.5))
case("aten.sym_storage_offset.default", x345[1:])
case("aten.repeat_interleave.Tensor", torch.tensor([2, 0, 3, 1]), output_size=6)
case("aten.permute_copy.default", x345, [1, 2, 0])
case("aten.unbind_copy.int", x345, 2)
# creation
case("aten.arange.start_step", 1, 11, 3)
case("aten.arange.start_step", 0.0, 2.0, 0.25, dtype=torch.float32, id="float")
case("aten.arange.start", 2, 7)
case("aten.arange.default", 5)
case("aten.full.default", [2, 3], 1.5)
case("aten.full.default", [2, 3], 7, dtype=torch.int32, id="int")
case("aten.full_like.default", x34, -2.0)
case("aten.zeros_like.default", x34)
case("aten.ones_like.default", x34, dtype=torch.int32)
case("aten.zeros.default", [2, 3])
case("aten.ones.default", [2, 3], dtype=torch.bfloat16)
case("aten.new_zeros.default", x34, [5])
case("aten.new_ones.default", x34, [5, 1])
case("aten.new_full.default", x34, [2], 3.0)
case("aten.scalar_tensor.default", 2.5)
case("aten.fill.Scalar", x34, 0.25)
case("aten.copy.default", x34, r(4))
case("aten.sym_size.int", x345, 1)
case("aten.sym_numel.default", x345)
case("aten._assert_scalar.default", True, "holds")
case("aten._assert_tensor_metadata.default", x34, dtype=torch.float32)
case("aten.sym_constrain_range_for_size.default", 3)
# uninitialised memory: only the shape and dtype are checked (see _compare)
UNINITIALISED = {
    "aten.empty_like.default",
    "aten.empty.memory_format",
    "aten.new_empty.default",
    "aten.empty_permuted.default",
}
case("aten.empty_like.default", x34)
case("aten.empty.memory_format", [2, 3])
case("aten.new_empty.default", x34, [4])
case("aten.empty_permuted.default", [2, 3, 4], [0, 2, 1])
CASES += NN_CASES


def _torch_op(name: str):
    namespace, packet, overload = name.split(".")
    return getattr(getattr(getattr(torch.ops, namespace), packet), overload)


def _to_jax(a):
    return interop.to_jax(a, copy=True, downcast=True) if isinstance(a, torch.Tensor) else a


def _kind(dtype) -> str:
    return np.dtype(dtype).kind if np.dtype(dtype).kind in "biu" else "f"


def _compare(name: str, got, want) -> None:
    if want is None or got is None:  # outputs the lowering does not compute (embedding_bag's)
        return
    if isinstance(want, (list, tuple)):
        assert len(got) == len(want), name
        for g, w in zip(got, want, strict=True):
            _compare(name, g, w)
        return
    if not isinstance(want, torch.Tensor):
        assert got == want, (name, got, want)
        return
    got = np.asarray(got)
    assert got.shape == tuple(want.shape), (name, got.shape, want.shape)
    if name in UNINITIALISED:
        return
    want = want.resolve_conj()
    w = want.float().numpy() if want.dtype in (torch.bfloat16, torch.float16) else want.numpy()
    if want.is_complex():  # compared as complex, dtype kind included
        assert got.dtype.kind == "c", (name, got.dtype)
        np.testing.assert_allclose(got, w, rtol=2e-5, atol=2e-5)
        return
    assert _kind(got.dtype) == _kind(w.dtype) or w.dtype.kind == "u", (name, got.dtype, w.dtype)
    if want.numel() == 0:  # batch norm's empty saved statistics
        return
    wide = np.complex128 if np.iscomplexobj(w) else np.float64  # linalg_eig's complex outputs
    np.testing.assert_allclose(got.astype(wide), w.astype(wide), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize(
    ("name", "args", "kwargs"),
    [pytest.param(n, a, k, id=f"{n}[{i}]" if i else n) for n, i, a, k in CASES],
)
def test_op_matches_aten(name: str, args: tuple, kwargs: dict) -> None:
    want = _torch_op(name)(*args, **kwargs)
    jargs = tpytree.tree_map(_to_jax, args)
    jkwargs = tpytree.tree_map(_to_jax, kwargs)
    if name in RECORDED:  # the output torch.export would have recorded, its sizes pinned
        jkwargs["recorded"] = want
    _compare(name, TABLE[name](*jargs, **jkwargs), want)


def test_every_aten_op_has_a_case() -> None:
    """Random ops draw other numbers than torch: tests/interop/ops/test_random.py has theirs."""
    covered = {n for n, *_ in CASES} | RANDOM
    missing = sorted(n for n in TABLE if n.startswith("aten.") and n not in covered)
    assert not missing, f"ops without a test case: {missing}"


def test_depthwise_paths_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """The multiply-add rewrite and XLA's grouped convolution give the same result."""
    x, w = jnp.asarray(r(2, 6, 11, 11).numpy()), jnp.asarray(r(6, 1, 5, 5).numpy())
    args = (x, w, None, [2, 2], [2, 2], [1, 1], False, [0, 0], 6)
    assert _conv._is_depthwise(x, w, 6, 2) == (jax.default_backend() == "cpu")
    rewritten = _conv.conv(*args)
    monkeypatch.setattr(_conv, "DEPTHWISE_MAX_TAPS", 0)
    assert not _conv._is_depthwise(x, w, 6, 2)
    np.testing.assert_allclose(np.asarray(_conv.conv(*args)), np.asarray(rewritten), atol=1e-5)


@pytest.mark.parametrize(
    "block_bytes", [1, 4 * 5 * 7 * 2, 1 << 30], ids=["1-head", "2-heads", "all"]
)
def test_attention_blocks_match_torch(monkeypatch: pytest.MonkeyPatch, block_bytes: int) -> None:
    """Unmasked SDPA in blocks of 1, 2 or all 4 heads: output and logsumexp equal torch's."""
    monkeypatch.setattr(_attention, "WHOLE_MAX_KEYS", 0)  # blocks at any length
    monkeypatch.setattr(_attention, "BLOCK_BYTES", block_bytes)
    q, k, v = r(3, 4, 5, 8), r(3, 4, 7, 8), r(3, 4, 7, 8)
    group = _attention._group(4, 5 * 7)
    assert group == {1: 1, 280: 2, 1 << 30: 4}[block_bytes]
    want = aten._scaled_dot_product_flash_attention_for_cpu.default(q, k, v, scale=0.3)
    got = TABLE[_fl](*map(_to_jax, (q, k, v)), scale=0.3)
    _compare(_fl, got, want[:2])


def test_attention_blocks_grad_and_symbolic_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gradients through the blocked form equal autograd's; a symbolic batch exports."""
    monkeypatch.setattr(_attention, "WHOLE_MAX_KEYS", 0)
    monkeypatch.setattr(_attention, "BLOCK_BYTES", 4 * 5 * 5 * 2)
    q, k, v = (r(2, 4, 5, 8).requires_grad_() for _ in range(3))
    torch.nn.functional.scaled_dot_product_attention(q, k, v).square().sum().backward()

    def loss(*qkv):
        return jnp.sum(jnp.square(_attention.attention(*qkv, None, False, None)[0]))

    grads = jax.grad(loss, argnums=(0, 1, 2))(*(_to_jax(t.detach()) for t in (q, k, v)))
    for g, t in zip(grads, (q, k, v), strict=True):
        np.testing.assert_allclose(np.asarray(g), t.grad.numpy(), rtol=1e-4, atol=1e-5)
    (b,) = jax.export.symbolic_shape("b")
    spec = jax.ShapeDtypeStruct((b, 4, 5, 8), jnp.float32)
    fn = jax.jit(lambda *qkv: _attention.attention(*qkv, None, False, None)[0])
    exported = jax.export.export(fn)(spec, spec, spec)
    x = _to_jax(r(3, 4, 5, 8))
    np.testing.assert_allclose(np.asarray(exported.call(x, x, x)), np.asarray(fn(x, x, x)))


@pytest.mark.parametrize("whole_max_keys", [0, 320], ids=["blocked", "all-slices"])
def test_attention_query_chunks_match_torch(
    monkeypatch: pytest.MonkeyPatch, whole_max_keys
) -> None:
    """Queries in chunks of at most 2 (2, 2, 1 of 5), blocked or not: torch's output and lse."""
    monkeypatch.setattr(_attention, "QUERY_CHUNK", 2)
    monkeypatch.setattr(_attention, "WHOLE_MAX_KEYS", whole_max_keys)
    q, k, v = r(3, 4, 5, 8), r(3, 4, 7, 8), r(3, 4, 7, 8)
    want = aten._scaled_dot_product_flash_attention_for_cpu.default(q, k, v, scale=0.3)
    _compare(_fl, TABLE[_fl](*map(_to_jax, (q, k, v)), scale=0.3), want[:2])


def test_attention_is_one_batched_call_off_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lowered for CUDA, long unmasked SDPA has no loop over blocks (one batched
    softmax-matmul, equal to torch); lowered for the CPU it keeps the blocks' lax.map (a while
    loop); short inputs take the batched form on both."""
    q, k, v = r(3, 4, 5, 8), r(3, 4, 7, 8), r(3, 4, 7, 8)
    want = aten._scaled_dot_product_flash_attention_for_cpu.default(q, k, v, scale=0.3)
    got = _attention._softmax_matmul(*map(_to_jax, (q, k, v)), 0.3)
    _compare(_fl, got, want[:2])
    fn = jax.jit(lambda *qkv: _attention.attention(*qkv, None, False, 0.3)[0])
    args = [jax.ShapeDtypeStruct(t.shape, jnp.float32) for t in (q, k, v)]
    text = {p: jax.export.export(fn, platforms=(p,))(*args).mlir_module() for p in ("cpu", "cuda")}
    assert "stablehlo.while" not in text["cpu"] and "stablehlo.while" not in text["cuda"]
    monkeypatch.setattr(_attention, "WHOLE_MAX_KEYS", 6)  # 7 keys: past it
    fn = jax.jit(lambda *qkv: _attention.attention(*qkv, None, False, 0.3)[0])  # traced anew
    text = {p: jax.export.export(fn, platforms=(p,))(*args).mlir_module() for p in ("cpu", "cuda")}
    assert "stablehlo.while" in text["cpu"] and "stablehlo.while" not in text["cuda"]


def test_attention_blocks_low_precision() -> None:
    """bfloat16 in, bfloat16 out, accumulated in float32 like torch's CPU kernel."""
    q, k, v = (r(2, 4, 9, 8).bfloat16() for _ in range(3))
    want = torch.nn.functional.scaled_dot_product_attention(q, k, v).float().numpy()
    got = TABLE["aten.scaled_dot_product_attention.default"](*map(_to_jax, (q, k, v)))
    assert got.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(got, np.float32), want, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("aten.max_pool2d.default", ([3, 3], [2, 2], [1, 1], [1, 1], True)),
        ("aten.avg_pool2d.default", ([3, 3], [2, 2], [1, 1], True, False)),
    ],
    ids=["max", "avg"],
)
def test_pooling_grad_under_jit_and_a_symbolic_batch(name: str, args: tuple) -> None:
    """Pooling's VJP under ``jit`` equals autograd, and exports on a symbolic batch (the
    reduction's identity must be concrete for JAX to pick its differentiable max / sum)."""
    x = r(2, 3, 9, 9).requires_grad_()
    w = r(2, 3, 5, 5)
    (_torch_op(name)(x, *args) * w).sum().backward()

    def loss(x):
        return jnp.sum(TABLE[name](x, *args) * _to_jax(w))

    got = jax.jit(jax.grad(loss))(_to_jax(x.detach()))
    np.testing.assert_allclose(np.asarray(got), x.grad.numpy(), rtol=1e-5, atol=1e-6)
    (b,) = jax.export.symbolic_shape("b")
    pool = jax.jit(lambda x: TABLE[name](x, *args))
    exported = jax.export.export(pool)(jax.ShapeDtypeStruct((b, 3, 9, 9), jnp.float32))
    restored = jax.export.deserialize(exported.serialize(vjp_order=1))
    xj = _to_jax(r(4, 3, 9, 9))
    np.testing.assert_allclose(np.asarray(restored.call(xj)), np.asarray(pool(xj)))
