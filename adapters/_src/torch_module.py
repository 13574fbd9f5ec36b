"""A torch ``nn.Module`` as a pure, thread-safe, differentiable ``forward(params, x)``.

``params`` is a flat dict of the module's parameters and buffers under the names of
``module.state_dict()``; they share memory with the module (no copy). ``forward`` runs the
module with whatever ``params`` it is given, via ``torch.func.functional_call``, so the
output depends only on ``(params, x)``.

Thread safety. ``functional_call`` swaps the module's attributes for the duration of a call,
which races when two threads share one module. Each thread therefore calls its own
*structural* copy (``copy.deepcopy`` with every parameter and buffer in the memo, so the copies
share the tensors and hold only their own Python objects, made once per thread): lock-free,
and the held module is never mutated. Why not a lock: ``docs/design/adapters.md``.

Own params. When ``params`` holds exactly the module's own tensors (the common ``adapter(x)``
case, checked by identity), the module is called directly, skipping the swap
(``benchmarks/adapter_overhead.py`` compares the adapter with the raw module call).

Gradients. Inference runs under ``torch.no_grad`` (no autograd graph, no saved activations).
When grad mode is on and any tensor in ``params`` or ``x`` requires grad (which includes the
wrapped tensors of ``torch.func.grad`` / ``vjp``), the call runs with autograd instead. We use
``no_grad`` rather than ``inference_mode`` so outputs stay ordinary tensors that a user may
later feed into autograd code without "inference tensor" errors.

Devices. ``device`` moves the module (parameters and buffers, persistent or not) once, before
``params`` are taken, so ``params`` live on that device. ``forward`` then expects its input
there and raises a `ValueError` naming the argument, both devices and the fix when it is not:
it does not copy CPU inputs across, as neither torch nor eva's wrappers do, because a silent
host-to-device copy on every call is the slow path a user should see, and because a loader
that pins memory and copies with ``non_blocking=True`` (the application's
``data.loader.iter_batches``) does it better ahead of time. The check compares ``x.device``
with one cached device, so the own-params fast path keeps its speed.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping
from typing import Any

import torch

from .adapter import Adapter
from .devices import DEVICE_TYPES, resolve_device
from .params_check import params_checker

#: ``call(module, x) -> y``: how to run the module (default: ``module(x)``)
Call = Callable[[torch.nn.Module, Any], Any]


def module_params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``{name: tensor}`` for every entry of ``module.state_dict()``, sharing memory.

    The tensors are detached views of the module's own parameters and buffers (no copy) and
    do not require grad.
    """
    return {name: t.detach() for name, t in module.state_dict(keep_vars=True).items()}


def structural_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A deep copy of ``module``'s Python objects that shares every parameter and buffer."""
    memo: dict[int, Any] = {}
    for t in module.parameters():
        memo[id(t)] = t
    for t in module.buffers():
        memo[id(t)] = t
    return copy.deepcopy(module, memo)


def single_device(params: Mapping[str, torch.Tensor]) -> torch.device | None:
    """The one device holding every tensor of ``params``; None if none or several."""
    devices = {t.device for t in params.values() if isinstance(t, torch.Tensor)}
    return devices.pop() if len(devices) == 1 else None


def _wrong_device(x: Any, name: str, device: torch.device) -> tuple[str, torch.device] | None:
    """``(argument, its device)`` for the first tensor of ``x`` not on ``device``, else None.

    Looks at ``x`` and one level inside a dict, list or tuple (the input forms backbones take).
    """
    if isinstance(x, torch.Tensor):
        return None if x.device == device else (name, x.device)
    if isinstance(x, Mapping):
        for key, value in x.items():
            if isinstance(value, torch.Tensor) and value.device != device:
                return f"{name}[{key!r}]", value.device
    elif isinstance(x, (list, tuple)):
        for i, value in enumerate(x):
            if isinstance(value, torch.Tensor) and value.device != device:
                return f"{name}[{i}]", value.device
    return None


def _device_error(where: str, got: torch.device, device: torch.device) -> ValueError:
    move = f"{where}.to({str(device)!r})"
    if device.type == "cuda":
        move += ", best pinned and with non_blocking=True in the loader"
    rebuild = (
        f", or build the adapter there: adapters.build(spec, device={str(got)!r})"
        if got.type in DEVICE_TYPES
        else ""
    )
    return ValueError(
        f"forward: argument {where} is on device {str(got)!r}, expected {str(device)!r} (the "
        f"device this adapter was built on). Fix: move it first ({move}){rebuild}."
    )


def _requires_grad(tree: Any) -> bool:
    if isinstance(tree, torch.Tensor):
        return tree.requires_grad
    if isinstance(tree, Mapping):
        return any(_requires_grad(v) for v in tree.values())
    if isinstance(tree, (list, tuple)):
        return any(_requires_grad(v) for v in tree)
    return False


def make_forward(
    module: torch.nn.Module,
    *,
    call: Call | None = None,
    post: Callable[[Any], Any] | None = None,
    device: str | torch.device | None = None,
) -> tuple[Callable[[Mapping[str, Any], Any], Any], dict[str, torch.Tensor]]:
    """Turn ``module`` into ``(forward, params)``.

    Args:
        module: put in eval mode with ``requires_grad_(False)`` (and moved to ``device``);
            never mutated afterwards.
        call: how to run it, e.g. ``lambda m, x: m.forward_intermediates(x, ...)``;
            default ``module(x)``.
        post: output transform applied to the module's output inside ``forward``.
        device: move the module here first (see `resolve_device`); None leaves it where it is.

    Returns:
        ``forward(params, x) -> y`` and the module's own ``params``. ``forward`` raises
        `ValueError` when ``params`` lacks a key of the module's, has one it does not, or holds
        a tensor of another shape (see `params_checker`), and when an input tensor is not on
        the module's device (when all its tensors share one device; a module spread over
        several devices is not checked).

    Raises:
        BuildError: ``device`` is invalid or unavailable.
    """
    target = resolve_device(device)
    if target is not None:
        module.to(target)
    module.eval()
    module.requires_grad_(False)
    params = module_params(module)
    own = tuple(params.items())
    check_params = params_checker(params)
    local = threading.local()
    expected = single_device(params) if params else target

    def run(m: torch.nn.Module, x: Any) -> Any:
        return m(x) if call is None else call(m, x)

    def thread_copy() -> torch.nn.Module:
        replica = getattr(local, "module", None)
        if replica is None:
            replica = structural_copy(module)
            if call is not None:
                # functional_call runs replica(x); route that to the chosen method
                replica.forward = lambda x: call(replica, x)
            local.module = replica
        return replica

    def forward(p: Mapping[str, Any], x: Any) -> Any:
        if expected is not None:
            if isinstance(x, torch.Tensor):  # inline: the per-call cost is one comparison
                if x.device != expected:
                    raise _device_error("x", x.device, expected)
            else:
                wrong = _wrong_device(x, "x", expected)
                if wrong is not None:
                    raise _device_error(*wrong, expected)
        is_own = len(p) == len(own) and all(p.get(k) is t for k, t in own)
        if not is_own:
            # functional_call would fill a missing key from the held module: refuse instead
            check_params(p)
        grad = torch.is_grad_enabled() and (_requires_grad(x) or (not is_own and _requires_grad(p)))
        with torch.set_grad_enabled(grad):
            if is_own:
                y = run(module, x)
            else:
                y = torch.func.functional_call(thread_copy(), dict(p), (x,))
            return y if post is None else post(y)

    return forward, params


def torch_adapter(
    module: torch.nn.Module,
    spec: Any,
    *,
    call: Call | None = None,
    post: Callable[[Any], Any] | None = None,
    info: Mapping[str, Any] | None = None,
    device: str | torch.device | None = None,
) -> Adapter:
    """An `Adapter` running ``module`` (see `make_forward`) on ``device``.

    ``info["device"]`` is the device of the params (e.g. ``"cuda:0"``), or None when they
    span several devices.
    """
    forward, params = make_forward(module, call=call, post=post, device=device)
    where = single_device(params) if params else resolve_device(device)
    return Adapter(
        forward=forward,
        params=params,
        spec=spec,
        framework="torch",
        module=module,
        info={
            "module_class": f"{type(module).__module__}.{type(module).__qualname__}",
            "device": None if where is None else str(where),
        }
        | dict(info or {}),
    )
