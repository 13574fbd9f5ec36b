"""``runtime: jax`` in train mode (``lower_to_jax(..., train=True)``, ``build(..., train=True)``).

The adapter's own forward (transforms included) is lowered with
``interop.lower(..., train=True)``: the result's ``forward(params, x, *, key=None)`` returns
``(y, new_buffers)``, ``y`` structured as the adapter's output and ``new_buffers`` the buffers
the step updated (batch norm's running statistics and count) under the adapter's ``params``
keys, so ``{**params, **new_buffers}`` is the next step's params.

Not cached: the disk cache holds eval mode's ``jax.export`` artifact, served as
``forward(params, x)``; a train step has another signature (a key in, the buffers out) and
its trace is cheap beside a training run, so train mode is lowered afresh on each build
(``info["cache"]`` says so).

The first-build check runs torch's own train mode on a random batch (on copies of the
buffers, so the module is left as it was) and compares the outputs and the updated buffers
with the lowered step. It needs the step to be deterministic: when two keys give two outputs
(dropout or drop-path with ``p > 0``), no torch run can reproduce the draws, and
``info["train_check"]`` says it was not made (the random ops themselves are held to torch's
distributions by the conformance suite, ``benchmarks/_opinfo_random.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np
import torch

import interop

from ...adapter import Adapter
from ...devices import jax_device_name
from ...errors import BuildError, ParityError
from ..inputs import Traceable, as_torch_inputs, batch_of_two, check_inputs, restructure
from ..outputs import flatten, unflatten
from .device import exact_float32, export_platform, params_device, torch_device

#: ``info["cache"]`` of a train-mode adapter
NOT_CACHED = "off: train mode is lowered afresh on each build (the cache holds eval mode)"
#: ``info["train_check"]`` when the step draws random numbers
NOT_CHECKED = (
    "not made: the step draws random numbers (two keys give two outputs), which no torch run "
    "reproduces"
)


def lower_train(
    adapter: Adapter,
    example: Any,
    *,
    dynamic_batch: bool,
    atol: float,
    rtol: float,
    alternatives: str,
) -> Adapter:
    """The train-mode JAX adapter of the torch ``adapter`` (see the module and
    ``lower_to_jax``, which checks the arguments and calls this)."""
    kind, names, tensors = as_torch_inputs(example)
    if dynamic_batch:
        tensors = batch_of_two(names, tensors)
    where = torch_device(adapter)
    tensors = [t.to(where) for t in tensors]
    params = {k: interop.to_jax(v, downcast=True) for k, v in adapter.params.items()}
    with torch.no_grad():
        _, _, structure = flatten(
            adapter.forward(adapter.params, restructure(kind, names, tensors))
        )
    traceable = Traceable(adapter, kind, names)
    traceable.train(adapter.module.training)  # lower restores the mode it found
    try:
        lowered, _ = interop.lower(
            traceable, tuple(tensors), dynamic_batch=dynamic_batch, train=True
        )
    except interop.LoweringError as err:
        raise BuildError(
            "runtime",
            f"runtime='jax' cannot lower {type(adapter.module).__name__} in train mode:\n{err}",
            fix=alternatives,
        ) from err

    @jax.jit
    def step(p: Mapping[str, Any], args: tuple, key: Any) -> tuple[tuple, dict[str, Any]]:
        y, new = lowered({f"inner.{k}": v for k, v in p.items()}, args, key=key)
        return tuple(y), {k.removeprefix("inner."): v for k, v in new.items()}

    device = params_device(params)

    def forward(p: Mapping[str, Any], x: Any, *, key: Any = None) -> tuple[Any, dict[str, Any]]:
        leaves = [x[n] for n in names] if kind == "dict" else list(x) if kind == "tuple" else [x]
        y, new = step(dict(p), tuple(_on(a, device) for a in leaves), key)
        return unflatten(structure, list(y)), new

    check = check_inputs(restructure(kind, names, tensors))
    platform = "cpu" if where.type == "cpu" else export_platform(device)
    with exact_float32(platform):
        checked = _check(forward, params, traceable, check, where, atol, rtol, alternatives)
    name = None if device is None else jax_device_name(device)
    info = {"runtime": "jax", "device": name, "mode": "train", "cache": NOT_CACHED}
    return Adapter(
        forward=forward,
        params=params,
        spec=adapter.spec,
        framework="jax",
        module=adapter.module,
        info={**dict(adapter.info), **info, "train_check": checked},
    )


def _on(a: Any, device: jax.Device | None) -> Any:
    """An input as a JAX array on the params' device."""
    if isinstance(a, torch.Tensor):
        a = interop.to_jax(a)
    return a if device is None else jax.device_put(a, device)


def _check(
    forward: Any,
    params: dict[str, Any],
    traceable: torch.nn.Module,
    check: Any,
    where: torch.device,
    atol: float,
    rtol: float,
    alternatives: str,
) -> str:
    """``"passed"``, or `NOT_CHECKED` for a random step; a `ParityError` when torch's train
    mode gives other outputs or buffers."""
    x = jax.tree.map(lambda t: interop.to_jax(t.to(where)), check)
    y, new = forward(params, x, key=jax.random.key(0))
    again, _ = forward(params, x, key=jax.random.key(1))
    leaves = jax.tree.leaves(y)
    if any(
        not np.array_equal(np.asarray(a), np.asarray(b))
        for a, b in zip(leaves, jax.tree.leaves(again), strict=True)
    ):
        return NOT_CHECKED
    want, buffers = _torch_step(traceable, check, where)
    pairs = [(f"output {i}", a, b) for i, (a, b) in enumerate(zip(leaves, want, strict=True))]
    pairs += [(f"buffer {k}", new[k], buffers[k]) for k in sorted(new)]
    for what, ours, theirs in pairs:
        ours, theirs = np.asarray(ours, np.float64), theirs.detach().cpu().double().numpy()
        scale = float(np.abs(theirs).max()) if theirs.size else 0.0
        gap = float(np.abs(ours - theirs).max()) if theirs.size else 0.0
        if ours.shape != theirs.shape or gap > atol + rtol * scale:
            raise ParityError(
                f"lower_to_jax(train=True): the lowered train step differs from torch's train "
                f"mode on {what}: max abs diff {gap:.3g} (allowed {atol + rtol * scale:.3g}). "
                f"Fix: {alternatives}; and report the model (a lowering bug)."
            )
    return "passed"


def _torch_step(
    traceable: torch.nn.Module, check: Any, where: torch.device
) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    """Torch's train-mode outputs on ``check`` and the buffers it updated, run on copies of the
    buffers (the module's own are not written)."""
    buffers = {k: v.clone() for k, v in traceable.named_buffers()}
    inputs = tuple(t.to(where) for t in _leaves(check))
    was = traceable.training
    traceable.train(True)
    try:
        with torch.no_grad():
            out = torch.func.functional_call(traceable, buffers, inputs)
    finally:
        traceable.train(was)
    return list(out), {k.removeprefix("inner."): v for k, v in buffers.items()}


def _leaves(check: Any) -> Sequence[torch.Tensor]:
    if isinstance(check, Mapping):
        return list(check.values())
    return list(check) if isinstance(check, (tuple, list)) else [check]
