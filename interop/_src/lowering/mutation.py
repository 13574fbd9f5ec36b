"""Which of a module's parameters and buffers its forward writes in place, found by running
the forward once on fake tensors (no memory, no compute, the module's own state untouched).

torch.export reports some writes itself (a buffer updated with ``add_``: a mutated output of
the graph, which `check` names); others, through ``.data``, make it fail with a message about
fake tensors and constants that never says the forward writes its weights. This finds them,
so that the error can say so first.
"""

from __future__ import annotations

from typing import Any

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode


class _Writes(TorchDispatchMode):
    """Records each op that writes (in place) into one of ``storages``."""

    def __init__(self, storages: dict[StorageWeakRef, str]) -> None:
        super().__init__()
        self.storages = storages
        self.found: dict[str, str] = {}

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None):
        kwargs = kwargs or {}
        for i, arg in enumerate(func._schema.arguments):
            if arg.alias_info is None or not arg.alias_info.is_write:
                continue
            t = args[i] if i < len(args) else kwargs.get(arg.name)
            if isinstance(t, torch.Tensor):
                name = self.storages.get(StorageWeakRef(t.untyped_storage()))
                if name is not None:
                    self.found.setdefault(name, str(func))
        return func(*args, **kwargs)


def mutated_state(module: torch.nn.Module, args: tuple) -> list[str]:
    """``["w by aten.add_.Tensor", ...]``: the state ``module(*args)`` writes, and the op.

    Best effort: a forward that cannot run on fake tensors gives ``[]``.
    """
    try:
        mode = FakeTensorMode(allow_non_fake_inputs=True)
        state = dict(module.named_parameters(remove_duplicate=False))
        state.update(module.named_buffers(remove_duplicate=False))
        fake = {k: mode.from_tensor(v) for k, v in state.items()}
        fake_args = torch.utils._pytree.tree_map_only(torch.Tensor, mode.from_tensor, args)
        writes = _Writes({StorageWeakRef(v.untyped_storage()): k for k, v in fake.items()})
        with mode, writes, torch.no_grad():
            torch.func.functional_call(module, fake, fake_args)
    except Exception:  # the diagnosis of an error already being raised: never a new one
        return []
    return [f"{name} by {op}" for name, op in writes.found.items()]
