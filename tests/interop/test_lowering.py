"""``interop.lowering``, the lowering's public face: its names, the read-only op table, ``op``
to add an op (a user's own torch custom op included), and the refusals an op declares."""

from __future__ import annotations

import re

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import interop
from interop import lowering


@torch.library.custom_op("fm_adapters_test::halve", mutates_args=())
def _halve(x: torch.Tensor) -> torch.Tensor:
    return x / 2


@_halve.register_fake
def _(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


class _UsesCustomOp(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(4, 4)

    def forward(self, x):
        return _halve(self.proj(x))


def test_public_names() -> None:
    assert lowering.__all__ == ["OPS", "LoweringError", "lower", "op"]
    assert interop.lower is lowering.lower and interop.LoweringError is lowering.LoweringError
    assert "aten.add.Tensor" in lowering.OPS and callable(lowering.OPS["aten.add.Tensor"])


def test_the_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        lowering.OPS["aten.add.Tensor"] = jnp.add  # type: ignore[index]


def test_a_name_registered_twice_is_an_error_naming_the_first() -> None:
    with pytest.raises(ValueError, match=r"'aten\.add\.Tensor' is already registered .*arithmetic"):
        lowering.op("aten.add.Tensor")(jnp.add)


def test_a_users_op_lowers_once_registered() -> None:
    name = "fm_adapters_test.halve.default"
    model, x = _UsesCustomOp().eval(), torch.randn(3, 4)
    with pytest.raises(interop.LoweringError, match=rf"{name}, used in <root> \(_UsesCustomOp\)"):
        interop.lower(model, x)
    try:
        lowering.op(name)(lambda a: a / 2)
        forward, params = interop.lower(model, x)
        with torch.no_grad():
            want = model(x).numpy()
        np.testing.assert_allclose(forward(params, interop.to_jax(x)), want, atol=1e-6)
    finally:
        from interop._src.lowering.ops import TABLE

        TABLE.pop(name, None)


class _RReLU(torch.nn.Module):
    def __init__(self, training: bool) -> None:
        super().__init__()
        self.training_slopes = training

    def forward(self, x):
        return torch.nn.functional.rrelu(x, 0.1, 0.3, training=self.training_slopes)


class _StridedView(torch.nn.Module):
    def __init__(self, transpose: bool) -> None:
        super().__init__()
        self.transpose = transpose

    def forward(self, x):
        return (x.t() if self.transpose else x).as_strided((2, 2), (1, 2))


@pytest.mark.parametrize(
    ("model", "x", "refusal"),
    [
        (
            _RReLU(True),
            torch.randn(2, 1, 4, 4),
            "rrelu_with_noise_functional.default (draws random numbers",
        ),
        (_StridedView(True), torch.randn(4, 4), "as_strided.default (on a non-contiguous input)"),
    ],
    ids=["rrelu-random-slopes", "as-strided-non-contiguous"],
)
def test_an_op_lowered_in_some_uses_refuses_the_others(model, x, refusal) -> None:
    with pytest.raises(interop.LoweringError, match=re.escape(f"aten.{refusal}")):
        interop.lower(model, x, dynamic_batch=False)


@pytest.mark.parametrize(
    ("model", "x"),
    [(_RReLU(False), torch.randn(2, 1, 4, 4)), (_StridedView(False), torch.randn(4, 4))],
    ids=["rrelu-mean-slope", "as-strided-contiguous"],
)
def test_the_uses_an_op_accepts_lower(model, x) -> None:
    forward, params = interop.lower(model, x, dynamic_batch=False)
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(forward(params, interop.to_jax(x)), want, atol=1e-6)


class _ChannelsLastPool(torch.nn.Module):
    """Average pooling to 1x1 of a channels-last tensor, as ConvNeXt's and Swin's heads do:
    torch's decomposition restores the memory format with as_strided over a symbolic batch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
        return torch.nn.functional.adaptive_avg_pool2d(x * 2.0, 1)


class _SymbolicWindow(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.as_strided((x.shape[0], 2), (4, 2))


def test_a_restride_over_a_symbolic_batch_lowers_and_a_real_strided_view_is_refused() -> None:
    # refused as "as_strided with symbolic sizes" after the strided-view rework, which took
    # ConvNeXt, Swin, CoAtNet and MaxViT off the coverage list
    pool = _ChannelsLastPool().eval()
    forward, params = interop.lower(pool, torch.randn(2, 8, 7, 7))
    x = torch.randn(5, 8, 7, 7)
    np.testing.assert_allclose(np.asarray(forward(params, x.numpy())), pool(x), atol=1e-6)
    with pytest.raises(interop.LoweringError, match="as_strided"):
        interop.lower(_SymbolicWindow(), torch.randn(3, 4))
