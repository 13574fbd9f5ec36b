"""Torch on a traced JAX program's operands: the adapter's device and XLA's buffers.

``jax_function`` runs a torch forward (or its vjp) from inside a JAX computation, through one
of two callbacks:

* ``jax.pure_callback`` (``"host"``): the callback gets host arrays, which torch aliases;
  under ``jax.jit`` they are copies XLA makes of its operands (their pointers differ from
  the operands'). For an adapter on a GPU every call also copies all params and the input
  to the adapter's device and the outputs back: two host transfers per call (four when JAX
  itself is on a GPU, since XLA first copies its device buffers to the host and the
  results back).
* ``jax.experimental.buffer_callback`` (``"buffer"``): the callback gets XLA's own buffers
  (``__dlpack__`` on CPU and GPU) and writes the outputs into XLA's output buffers. With JAX
  and the adapter on the same GPU nothing crosses the host: torch aliases the buffers and
  runs on XLA's stream (``ctx.stream``), so ordering needs no synchronisation.

The input device of a torch adapter is where its params live (`adapter_device`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np
import torch
from torch.utils.dlpack import from_dlpack as _torch_from_capsule

CALLBACKS = ("auto", "host", "buffer")
_KDLCUDA = 2


def adapter_device(adapter: Any) -> torch.device:
    """The device a torch adapter computes on, which its inputs must be on.

    The one device holding every tensor of ``adapter.params``; with no tensor params,
    ``adapter.info["device"]`` when set; else the CPU.

    Raises:
        ValueError: the params span several devices and ``info["device"]`` names none of
            them as the input device.
    """
    params = adapter.params if isinstance(adapter.params, Mapping) else {}
    devices = {v.device for v in params.values() if isinstance(v, torch.Tensor)}
    info = getattr(adapter, "info", None) or {}
    named = info.get("device") if isinstance(info, Mapping) else None
    if len(devices) == 1:
        return devices.pop()
    if named is not None:
        return torch.device(named)
    if not devices:
        return torch.device("cpu")
    listed = ", ".join(sorted(str(d) for d in devices))
    raise ValueError(
        f"jax_function: the adapter's params span several devices ({listed}) and its "
        "info['device'] does not say which one takes the input. Fix: "
        "attrs.evolve(adapter, info={**adapter.info, 'device': 'cuda:0'}) naming the input "
        "device, or move the module to one device."
    )


def fake_inputs(
    adapter: Any,
    params: Mapping[str, Any],
    x: Any,
    device: torch.device,
    torch_dtype: Callable[[Any], torch.dtype],
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Empty tensors shaped like ``params`` and ``x`` on the adapter's devices.

    Call inside a ``FakeTensorMode``. Each param goes where the adapter's own param of that
    name lives (a module spread over devices keeps its layout), ``x`` on ``device``.
    """
    own = adapter.params if isinstance(adapter.params, Mapping) else {}

    def where(k: str) -> torch.device:
        v = own.get(k)
        return v.device if isinstance(v, torch.Tensor) else device

    fp = {
        k: torch.empty(v.shape, dtype=torch_dtype(v.dtype), device=where(k))
        for k, v in params.items()
    }
    return fp, torch.empty(x.shape, dtype=torch_dtype(x.dtype), device=device)


def mover(device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """``t -> t`` on ``device``: the identity when already there (no copy, no cost).

    Host memory handed over by ``pure_callback`` is pageable and owned by XLA. Pinning it
    would mean a host copy into a pinned staging buffer per call, which is what the driver
    does itself for a pageable copy, so the copy is made from pageable memory;
    ``non_blocking=True`` lets a device-to-device move (another GPU) stay asynchronous.
    """
    if device.type == "cpu":
        return _same_or_cpu

    def move(t: torch.Tensor) -> torch.Tensor:
        return t if t.device == device else t.to(device, non_blocking=True)

    return move


def _same_or_cpu(t: torch.Tensor) -> torch.Tensor:
    return t if t.is_cpu else t.cpu()


def from_buffer(b: Any) -> torch.Tensor:
    """A torch tensor over an XLA ``buffer_callback`` buffer (never a copy).

    The capsule is taken without a stream: the callback already runs on XLA's stream, so
    there is nothing to wait for (a torch ``from_dlpack(b)`` would hand ``b`` torch's stream).
    """
    return _torch_from_capsule(b.__dlpack__())


def on_cuda(buffers: list[Any]) -> bool:
    """Whether XLA's buffers for this call live on a CUDA device."""
    return bool(buffers) and buffers[0].__dlpack_device__()[0] == _KDLCUDA


def xla_stream(ctx: Any, t: torch.Tensor) -> contextlib.AbstractContextManager:
    """Make XLA's compute stream torch's current stream (and ``t``'s device current).

    Torch kernels queued there run after XLA's writes to the inputs and before XLA's reads
    of the outputs, with no host synchronisation.
    """
    stream = torch.cuda.ExternalStream(ctx.stream, device=t.device)
    return torch.cuda.stream(stream)


def write_outputs(out: Any, y: Any) -> None:
    """Copy the pytree ``y`` (torch tensors or arrays) into XLA's output buffers ``out``.

    Casts to the buffer's dtype (int64 to int32 without x64) and moves across devices.
    """
    outs, tree = jax.tree_util.tree_flatten(out)
    ys = tree.flatten_up_to(y)
    for o, v in zip(outs, ys, strict=True):
        target = from_buffer(o)
        if not isinstance(v, torch.Tensor):
            v = torch.as_tensor(np.asarray(v))
        if v.shape != target.shape:  # copy_ would broadcast a wrong shape silently
            raise ValueError(
                f"jax_function: the forward returned shape {tuple(v.shape)} where its fake-tensor "
                f"run gave {tuple(target.shape)}. Fix: make the forward's output shape depend "
                "only on the input's shape and dtype."
            )
        target.copy_(v.detach())
