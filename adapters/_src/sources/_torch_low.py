"""A torch source's module with its checkpoint, at a ``-true`` precision without the float32
weights where that changes no tensor (``adapters/_src/low_memory.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .. import checkpoint, low_memory, resources
from ..errors import BuildError
from ..lazy_checkpoint import open_lazy
from ..precision import precision_of
from ..torch_precision import storage_dtype
from ._torch import FilterFn, load_checkpoint, read_args, transform


def construct_and_load(
    make: Callable[[], torch.nn.Module],
    spec: Any,
    *,
    filter_of: Callable[[torch.nn.Module], FilterFn] | None = None,
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """``make()`` with ``spec.checkpoint_path`` loaded (`load_checkpoint`, ``filter_of(module)``
    its filter), and the ``info`` saying how.

    At a ``-true`` precision with a checkpoint the float32 weights are never held
    (``adapters/_src/low_memory.py``) unless that could change a tensor, and then ``info``'s
    ``low_memory_load`` says why not (True when it was used; absent when it does not apply).
    """
    storage = storage_dtype(precision_of(spec))
    info: dict[str, Any] = {}
    if storage is not None and getattr(spec, "checkpoint_path", None):
        try:
            return _load_low(make, spec, filter_of, storage), {"low_memory_load": True}
        except low_memory.Fallback as why:
            info["low_memory_load"] = f"not used: {why}"
    module = make()
    load_checkpoint(module, spec, filter_fn=filter_of(module) if filter_of else None)
    return module, info


def _load_low(
    make: Callable[[], torch.nn.Module],
    spec: Any,
    filter_of: Callable[[torch.nn.Module], FilterFn] | None,
    storage: torch.dtype,
) -> torch.nn.Module:
    try:
        module, drew = low_memory.construct(make)
    except Exception as err:  # the ordinary construction gives the real error, if any
        raise low_memory.Fallback(f"construction on the meta device failed ({err})") from err
    low_memory.check_structure(module, drew)
    path = resources.resolve(spec.checkpoint_path)
    filter_fn = filter_of(module) if filter_of else None
    strict = getattr(spec, "strict", True)
    with open_lazy(path, **read_args(spec)) as lazy:
        if lazy is not None:
            meta, read = lazy
            ids = {id(t): k for k, t in meta.items()}
            try:
                state = transform(dict(meta), spec, path, module, filter_fn)
            except BuildError:  # perhaps the meta tensors: run it on the real ones below
                state = {"": torch.empty(0)}
            if all(id(v) in ids for v in state.values()):
                low_memory.load_low(
                    module,
                    state,
                    lambda k: read(ids[id(state[k])]),
                    storage,
                    strict=strict,
                    path=path,
                )
                return module
    state = checkpoint.read_state_dict(path, **read_args(spec))
    try:
        state = transform(state, spec, path, module, filter_fn)
    except BuildError as err:  # perhaps the meta module: the ordinary path says
        raise low_memory.Fallback(f"the converter or filter failed ({err})") from err
    local = checkpoint.local_file(path)
    release = low_memory.pager(local) if local else None
    low_memory.load_low(
        module, state, state.__getitem__, storage, strict=strict, path=path, release=release
    )
    return module
