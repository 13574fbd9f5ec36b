"""A ``-true`` backbone loaded from a checkpoint without ever holding its float32 weights.

Built the ordinary way, a ``bf16-true`` / ``16-true`` backbone is constructed in float32,
loaded in float32 and then cast (``module.to(dtype)``, ``torch_module.make_forward``): the
peak is the float32 model plus the checkpoint. When a source constructs a module and loads
``checkpoint_path`` into it (timm, module and function specs), `load_low` does instead:

1. construct the module with each parameter moved to the meta device as it is registered
   (`params_on_meta`; buffers are made as usual, in float32, so tables computed in
   ``__init__`` are today's);
2. read the checkpoint: a local ``.safetensors`` file tensor by tensor with ``pread``
   (`lazy_checkpoint`), anything else as `checkpoint.read_state_dict` reads it; the same
   digest, prefix, converter, filter and key / shape checks (`checkpoint.fitting`) run first;
3. assign each tensor as it is read, cast to the parameter's own dtype and then to the storage
   dtype (floating tensors only, as ``module.to(dtype)`` does: BatchNorm running statistics are
   cast too, ``num_batches_tracked`` stays int64), with the parameter's own strides.

The module is then tensor for tensor the one the ordinary path gives (tested on timm ViT,
ResNet and ConvNeXt, and a module spec). Where that cannot be promised the ordinary path runs
instead (`Fallback`, whose message says why; ``adapter.info["low_memory_load"]`` says which
ran): tied parameters or buffers (one tensor under two names), a parameter subclass or complex
tensor, a parameter or persistent buffer the checkpoint does not fill (``strict: false``), a
tensor still on the meta device after loading (a buffer or attribute computed from parameters
in ``__init__``), non-persistent buffers in a module whose construction drew random numbers
(the draws differ once parameters are not initialised), or a converter or filter that fails on
the meta module. Random weights (no checkpoint) keep the ordinary path: float32 seeded weights,
then cast, so they equal the cast float32 ones.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch

from . import checkpoint

#: held while the patch is in place; re-entrant: a module built inside a module's construction
_PATCH = threading.RLock()


class Fallback(Exception):
    """Why the low-memory load cannot promise today's tensors (the ordinary path runs)."""


@contextlib.contextmanager
def params_on_meta() -> Iterator[None]:
    """Modules constructed in this thread inside the block get their parameters on the meta
    device as they are registered (other threads are untouched); torch's CPU generator is
    restored afterwards, so a fallback constructs from the same random state."""
    original = torch.nn.Module.register_parameter
    owner = threading.get_ident()

    def register(self: torch.nn.Module, name: str, param: Any) -> None:
        original(self, name, param)
        if threading.get_ident() != owner or param is None or param.device.type == "meta":
            return
        if type(param) is torch.nn.Parameter:  # subclasses are refused by `check_structure`
            self._parameters[name] = torch.nn.Parameter(
                param.to("meta"), requires_grad=param.requires_grad
            )

    with _PATCH, torch.random.fork_rng(devices=[]):
        torch.nn.Module.register_parameter = register  # type: ignore[method-assign]
        try:
            yield
        finally:
            torch.nn.Module.register_parameter = original  # type: ignore[method-assign]


def construct(make: Callable[[], torch.nn.Module]) -> tuple[torch.nn.Module, bool]:
    """``(module with meta parameters, whether its construction drew random numbers)``."""
    before = torch.random.get_rng_state()
    with params_on_meta():
        module = make()
        drew = not torch.equal(before, torch.random.get_rng_state())
    return module, drew


def check_structure(module: torch.nn.Module, drew: bool) -> None:
    """Raise `Fallback` for a module whose low-memory load could differ from today's."""
    seen: dict[int, str] = {}
    named = [
        *module.named_parameters(remove_duplicate=False),
        *module.named_buffers(remove_duplicate=False),
    ]
    for name, t in named:
        if id(t) in seen:
            raise Fallback(f"{name} and {seen[id(t)]} are one tensor (tied)")
        seen[id(t)] = name
        if t.is_complex() or (isinstance(t, torch.nn.Parameter) and t.device.type != "meta"):
            raise Fallback(f"{name} is complex or a parameter subclass")
    own = module.state_dict()
    transient = [n for n, _ in module.named_buffers() if n not in own]
    if transient and drew:
        raise Fallback(f"non-persistent buffers ({transient[0]}, ...) after random draws")


def load_low(
    module: torch.nn.Module,
    state: Mapping[str, torch.Tensor],
    read: Callable[[str], torch.Tensor],
    storage: torch.dtype,
    *,
    strict: bool,
    path: str,
    release: Callable[[torch.Tensor], None] | None = None,
) -> None:
    """Load ``state`` (checked like `checkpoint.load_into`; its values may be meta tensors,
    ``read(key)`` gives each real one) into ``module``, cast to ``storage`` one by one;
    ``release(tensor)`` is called on each read tensor once it is cast (see `pager`).

    Raises:
        BuildError: the checkpoint does not fit (as `checkpoint.load_into`).
        Fallback: a key of the module is not filled, or a meta tensor is left.
    """
    fit = checkpoint.fitting(module, state, strict=strict, path=path)
    own = module.state_dict(keep_vars=True)
    missing = [k for k in own if k not in fit]
    if missing:
        raise Fallback(f"the checkpoint does not fill {missing[0]} (strict: false)")
    cast: dict[str, torch.Tensor] = {}
    for key in fit:
        target = own[key]
        value = read(key).to(target.dtype)
        out = torch.empty_strided(
            target.size(),
            target.stride(),
            dtype=storage if target.is_floating_point() else target.dtype,
        )
        cast[key] = out.copy_(value)
        if release is not None:
            release(value)
        del value
    module.load_state_dict(cast, strict=False, assign=True)
    left = meta_tensors(module)
    if left:
        raise Fallback(f"{left[0]} is still on the meta device after loading")


#: ``madvise``'s MADV_PAGEOUT (Linux 5.4+): reclaim these pages now. Clean file-backed pages are
#: dropped from this process's resident set and read again from the file if touched; pages
#: written since (copy-on-write) are kept or swapped, never lost: the content cannot change
_MADV_PAGEOUT = 21
_PAGE = 4096


def pager(path: str) -> Callable[[torch.Tensor], None] | None:
    """``release(tensor)`` for tensors memory-mapped from the local file ``path``
    (``torch.load(mmap=True)``): once a tensor is cast, the pages of its storage that lie in a
    mapping of that file are paged out, so that casting a whole mapped checkpoint does not
    leave all of it resident (mapped pages count in the resident set). None where this process
    has no mapping of the file or the platform has no ``/proc/self/maps`` / ``madvise``."""
    import ctypes
    import os

    real = os.path.realpath(path)
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            fields = [line.split(maxsplit=5) for line in maps]
        libc = ctypes.CDLL(None, use_errno=True)
        madvise = libc.madvise
    except (OSError, AttributeError):
        return None
    spans = [
        tuple(int(a, 16) for a in f[0].split("-"))
        for f in fields
        if len(f) == 6 and f[5].strip() == real
    ]
    if not spans:
        return None
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]

    def release(t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        lo, hi = storage.data_ptr(), storage.data_ptr() + storage.nbytes()
        lo, hi = -(-lo // _PAGE) * _PAGE, hi // _PAGE * _PAGE  # whole pages inside it only
        if hi > lo and any(a <= lo and hi <= b for a, b in spans):
            madvise(lo, hi - lo, _MADV_PAGEOUT)  # a hint: its failure changes nothing

    return release


def meta_tensors(module: torch.nn.Module) -> list[str]:
    """Names of parameters, buffers and tensor attributes of ``module`` on the meta device."""
    names = [n for n, t in module.state_dict(keep_vars=True).items() if t.is_meta]
    names += [n for n, t in module.named_buffers() if t.is_meta and n not in names]
    for prefix, sub in module.named_modules():
        for attr, value in vars(sub).items():
            if isinstance(value, torch.Tensor) and value.is_meta:
                names.append(f"{prefix}.{attr}" if prefix else attr)
    return names
