"""A function as a module, lowered: what the op-family tests share."""

from __future__ import annotations

import jax
import torch

import interop


class Fn(torch.nn.Module):
    """``fn`` as a module's forward, for ``interop.lower``."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *args):
        return self.fn(*args)


def lowered(fn, *args, dynamic_batch=False):
    """``fn``'s forward lowered and run on ``args`` under jit, and torch's result."""
    module = Fn(fn)
    forward, params = interop.lower(module, args, dynamic_batch=dynamic_batch)
    got = jax.jit(forward)(params, tuple(interop.to_jax(a, downcast=True) for a in args))
    with torch.no_grad():
        want = module(*args)
    return got, want
