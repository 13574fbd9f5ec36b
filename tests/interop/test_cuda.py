"""CUDA paths: pointer equality, stream safety, device mismatch (skipped without a GPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import interop

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _jax_gpu() -> bool:
    import jax

    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:
        return False


def test_cuda_to_host_copy_false_raises_and_copy_none_copies() -> None:
    t = torch.randn(32, device="cuda")
    with pytest.raises(BufferError, match="cuda:0"):
        interop.to_numpy(t, copy=False)
    np.testing.assert_array_equal(interop.to_numpy(t), t.cpu().numpy())


@pytest.mark.skipif(not _jax_gpu(), reason="needs jax with a GPU backend")
def test_cuda_torch_jax_share_and_see_side_stream_writes() -> None:
    t = torch.randn(1 << 16, device="cuda")
    j = interop.to_jax(t, copy=False)
    assert interop.data_ptr(j) == t.data_ptr()
    side = torch.cuda.Stream()
    x = torch.zeros(1 << 22, device="cuda")
    with torch.cuda.stream(side):
        torch.cuda._sleep(20_000_000)
        x.fill_(1.0)
        y = interop.to_jax(x)
    assert float(y.sum()) == x.numel()
