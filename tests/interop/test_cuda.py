"""CUDA paths: pointer equality, stream safety, device mismatch (skipped without a GPU).

Stream tests write a buffer on a side stream after ``torch.cuda._sleep`` (~0.1 s of GPU
time) and read it at once through the bridge; each also reads it *without* the DLPack stream
handshake and expects stale data there, so the test proves it could catch a missing sync.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import interop

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.int8, torch.uint8]
DTYPES += [torch.bool]
N = 4096
SLEEP = 200_000_000  # GPU cycles, ~0.1 s at 2 GHz


def _jax_gpu() -> bool:
    import jax

    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:
        return False


def _ort_cuda() -> bool:
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


needs_jax_gpu = pytest.mark.skipif(not _jax_gpu(), reason="needs jax with a GPU backend")


def _source(dtype: torch.dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    if dtype == torch.bool:
        t = torch.rand(64, 32, generator=g) > 0.5
    elif dtype.is_floating_point:
        t = torch.randn(64, 32, generator=g).to(dtype)
    else:
        t = torch.randint(0, 100, (64, 32), generator=g, dtype=dtype)
    return t.cuda()


def _host(a: Any) -> torch.Tensor:
    return interop.to_torch(interop.to_numpy(a, copy=True))


def test_cuda_to_host_copy_false_raises_and_copy_none_copies() -> None:
    t = torch.randn(32, device="cuda")
    with pytest.raises(BufferError, match="cuda:0"):
        interop.to_numpy(t, copy=False)
    np.testing.assert_array_equal(interop.to_numpy(t), t.cpu().numpy())


@needs_jax_gpu
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cuda_torch_jax_share_one_buffer_both_ways(dtype: torch.dtype) -> None:
    import jax

    t = _source(dtype)
    j = interop.to_jax(t, copy=False)
    assert interop.data_ptr(j) == t.data_ptr()
    assert j.devices() == {jax.devices("gpu")[0]}
    native = jax.device_put(interop.to_numpy(t, copy=True), jax.devices("gpu")[0])
    back = interop.to_torch(native, copy=False)
    assert back.data_ptr() == interop.data_ptr(native) and back.is_cuda
    assert torch.equal(_host(j), t.cpu()) and torch.equal(back.cpu(), t.cpu())


@needs_jax_gpu
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cuda_copy_true_gives_a_new_device_buffer(dtype: torch.dtype) -> None:
    t = _source(dtype)
    j = interop.to_jax(t, copy=True)
    back = interop.to_torch(j, copy=True)
    assert len({t.data_ptr(), interop.data_ptr(j), back.data_ptr()}) == 3
    assert back.is_cuda and torch.equal(back.cpu(), t.cpu())


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cuda_to_ortvalue_shares_with_the_cuda_provider_else_copies_to_host(
    dtype: torch.dtype,
) -> None:
    t = _source(dtype)
    if _ort_cuda():
        ov = interop.to_ortvalue(t, copy=False)
        assert ov.data_ptr() == t.data_ptr()
        assert interop.to_torch(ov, copy=False).data_ptr() == t.data_ptr()
    else:
        with pytest.raises(BufferError, match="cuda:0"):
            interop.to_ortvalue(t, copy=False)
        ov = interop.to_ortvalue(t)
        assert ov.device_name().lower() == "cpu"
    assert torch.equal(_host(ov), t.cpu())


class _NoSync:
    """``t`` through DLPack with ``stream=-1``: the producer is not waited for."""

    def __init__(self, t: torch.Tensor) -> None:
        self.t = t

    def __dlpack__(self, stream: Any = None, **kwargs: Any) -> Any:
        return self.t.__dlpack__(stream=-1, **kwargs)

    def __dlpack_device__(self) -> Any:
        return self.t.__dlpack_device__()


def _side_stream_matmul(read: Any) -> tuple[float, float]:
    """``out = ones @ ones`` (every entry N) on a side stream after a spin; ``read(out)``
    inside that stream's context returns what the consumer sees as ``(min, max)``."""
    a = torch.ones(N, N, device="cuda")
    out = torch.zeros(N, N, device="cuda")
    torch.cuda.synchronize()
    with torch.cuda.stream(torch.cuda.Stream()):
        torch.cuda._sleep(SLEEP)
        torch.matmul(a, a, out=out)
        seen = read(out)
    torch.cuda.synchronize()
    return seen


@needs_jax_gpu
def test_cuda_jax_sees_a_side_stream_write_and_the_unsynced_control_does_not() -> None:
    import jax
    import jax.numpy as jnp

    def via_bridge(out: torch.Tensor) -> tuple[float, float]:
        y = interop.to_jax(out)
        return float(jnp.min(y)), float(jnp.max(y))

    def unsynced(out: torch.Tensor) -> tuple[float, float]:
        y = jax.dlpack.from_dlpack(_NoSync(out))
        return float(jnp.min(y)), float(jnp.max(y))

    assert _side_stream_matmul(via_bridge) == (N, N)
    assert _side_stream_matmul(unsynced) != (N, N), "the control cannot detect a missing sync"


@pytest.mark.parametrize("convert", [interop.to_numpy, interop.to_ortvalue], ids=["numpy", "ort"])
def test_cuda_host_consumers_see_a_side_stream_write(convert: Any) -> None:
    def via_bridge(out: torch.Tensor) -> tuple[float, float]:
        host = _host(convert(out)).float()
        return float(host.min()), float(host.max())

    assert _side_stream_matmul(via_bridge) == (N, N)


@needs_jax_gpu
def test_cuda_torch_side_stream_sees_a_jax_write() -> None:
    import jax
    import jax.numpy as jnp

    @jax.jit
    def chain(a: Any) -> Any:
        y = a
        for _ in range(16):
            y = (y @ a) / a.shape[0]  # ones stay ones, exactly
        return y @ a * 3.0

    a = jax.device_put(jnp.ones((N, N), jnp.float32), jax.devices("gpu")[0])
    chain(a).block_until_ready()  # compile outside the race
    y = chain(a)
    with torch.cuda.stream(torch.cuda.Stream()):
        t = interop.to_torch(y)
        seen = (float(t.min()), float(t.max()))
    assert seen == (3.0 * N, 3.0 * N)


def _recording_cuda_adapter(seen: list) -> Any:
    """A torch adapter on cuda:0 noting the device and pointer of every real input."""
    import attrs
    from torch._subclasses.fake_tensor import FakeTensor

    from adapters._src.torch_module import torch_adapter

    torch.manual_seed(0)
    adapter = torch_adapter(torch.nn.Linear(8, 4), None, device="cuda")

    def forward(params: Any, x: Any) -> Any:
        if not isinstance(x, FakeTensor):
            seen.append((str(x.device), x.data_ptr()))
        return adapter.forward(params, x)

    return attrs.evolve(adapter, forward=forward)


def _want(adapter: Any, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return adapter.forward(adapter.params, x.cuda()).cpu().numpy()


@needs_jax_gpu
@pytest.mark.parametrize("callback", ["auto", "host", "buffer"])
def test_cuda_jax_function_runs_a_cuda_adapter(callback: str) -> None:
    """JAX and the adapter on the GPU: the torch forward gets CUDA memory on every path;
    ``auto`` takes ``buffer``, which hands torch XLA's own buffers (same pointers)."""
    import jax

    seen: list = []
    adapter = _recording_cuda_adapter(seen)
    x = torch.randn(3, 8, device="cuda")
    f = interop.jax_function(adapter, callback=callback)
    assert f.callback == ("buffer" if callback == "auto" else callback)
    xj = interop.to_jax(x, copy=True)
    y = jax.jit(f)(interop.jax_params(adapter), xj)
    np.testing.assert_allclose(np.asarray(y), _want(adapter, x), rtol=1e-5, atol=1e-5)
    assert y.devices() == {jax.devices("gpu")[0]}
    assert [d for d, _ in seen] == ["cuda:0"]
    if f.callback == "buffer":
        assert seen[0][1] == interop.data_ptr(xj)  # no host round trip, no copy


@pytest.mark.parametrize("callback", ["host", "buffer"])
def test_cuda_adapter_under_jax_on_the_cpu_moves_inputs_to_the_gpu(callback: str) -> None:
    """JAX computing on the CPU, the adapter on CUDA: the callback copies params and input to
    the adapter's device and the outputs back (two host transfers), instead of tripping the
    adapter's device check or running on the host."""
    import jax

    seen: list = []
    adapter = _recording_cuda_adapter(seen)
    cpu = jax.devices("cpu")[0]
    x = torch.randn(3, 8)
    params = {k: jax.device_put(v.cpu().numpy(), cpu) for k, v in adapter.params.items()}
    y = jax.jit(interop.jax_function(adapter, callback=callback))(
        params, jax.device_put(x.numpy(), cpu)
    )
    np.testing.assert_allclose(np.asarray(y), _want(adapter, x), rtol=1e-5, atol=1e-5)
    assert y.devices() == {cpu}
    assert [d for d, _ in seen] == ["cuda:0"]


@needs_jax_gpu
@pytest.mark.parametrize("callback", ["host", "buffer"])
def test_cuda_grad_and_per_example_grad_equal_torch_autograd(callback: str) -> None:
    import jax
    import jax.numpy as jnp

    seen: list = []
    adapter = _recording_cuda_adapter(seen)
    f = interop.jax_function(adapter, callback=callback)
    params = interop.jax_params(adapter)
    xs = torch.randn(3, 2, 8, device="cuda")
    g = jax.jit(jax.vmap(jax.grad(lambda p, x: jnp.sum(f(p, x) ** 2), argnums=(0, 1)), (None, 0)))
    gp, gx = g(params, interop.to_jax(xs, copy=True))
    assert {d for d, _ in seen} == {"cuda:0"}
    for i in range(3):
        tp = {k: v.clone().requires_grad_(True) for k, v in adapter.params.items()}
        tx = xs[i].clone().requires_grad_(True)
        (adapter.forward(tp, tx) ** 2).sum().backward()
        np.testing.assert_allclose(np.asarray(gx[i]), tx.grad.cpu().numpy(), rtol=1e-4, atol=1e-5)
        for k, v in tp.items():
            np.testing.assert_allclose(
                np.asarray(gp[k][i]), v.grad.cpu().numpy(), rtol=1e-4, atol=1e-5
            )
