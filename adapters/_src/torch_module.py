"""A torch ``nn.Module`` as a pure, thread-safe, differentiable ``forward(params, x)``.

``params`` is a flat dict of the module's parameters and buffers under the names of
``module.state_dict()``; they share memory with the module (no copy). ``forward`` runs the
module with whatever ``params`` it is given, via ``torch.func.functional_call``, so the
output depends only on ``(params, x)``.

Thread safety. ``functional_call`` swaps the module's attributes for the duration of a call,
which races when two threads share one module. Two correct designs, measured with
``benchmarks/adapter_overhead.py`` (4 threads sharing one ViT-tiny adapter, each call with
its own params, 2 shared CPU cores):

- one lock around every call: calls serialise, and even the fast path below would need the
  lock, because another thread may be mid-swap on the same module;
- per-thread *structural* copies (``copy.deepcopy`` with every parameter and buffer in the
  memo, so the copies share the tensors and cost only the Python objects, made once per
  thread): lock-free, and the held module is never touched at all.

Per-thread copies took 0.71x-0.84x the time of the lock over repeated runs, so we use them;
"the held module is never mutated" then holds literally.

Speed. When ``params`` holds exactly the module's own tensors (the common ``adapter(x)``
case, checked by identity), the module is called directly, skipping the swap: this is what
keeps the adapter within noise of the raw module call (see ``benchmarks/adapter_overhead.py``).

Gradients. Inference runs under ``torch.no_grad`` (no autograd graph, no saved activations).
When grad mode is on and any tensor in ``params`` or ``x`` requires grad (which includes the
wrapped tensors of ``torch.func.grad`` / ``vjp``), the call runs with autograd instead. We use
``no_grad`` rather than ``inference_mode`` so outputs stay ordinary tensors that a user may
later feed into autograd code without "inference tensor" errors.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping
from typing import Any

import torch

from .adapter import Adapter

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
) -> tuple[Callable[[Mapping[str, Any], Any], Any], dict[str, torch.Tensor]]:
    """Turn ``module`` into ``(forward, params)``.

    Args:
        module: put in eval mode with ``requires_grad_(False)``; never mutated afterwards.
        call: how to run it, e.g. ``lambda m, x: m.forward_intermediates(x, ...)``;
            default ``module(x)``.
        post: output transform applied to the module's output inside ``forward``.

    Returns:
        ``forward(params, x) -> y`` and the module's own ``params``.
    """
    module.eval()
    module.requires_grad_(False)
    params = module_params(module)
    own = tuple(params.items())
    local = threading.local()

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
        is_own = len(p) == len(own) and all(p.get(k) is t for k, t in own)
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
) -> Adapter:
    """An `Adapter` running ``module`` (see `make_forward`)."""
    forward, params = make_forward(module, call=call, post=post)
    return Adapter(
        forward=forward,
        params=params,
        spec=spec,
        framework="torch",
        module=module,
        info={"module_class": f"{type(module).__module__}.{type(module).__qualname__}"}
        | dict(info or {}),
    )
