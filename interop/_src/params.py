"""``load_params``: arrays keyed by ``state_dict`` name back into a torch module.

The way back from JAX: params that ``interop.lower`` (or ``runtime="jax"``) gave as JAX arrays,
updated there (an optax step), are written into the module's own parameters and buffers.

Why new buffers instead of ``copy_`` into the old ones (what ``load_state_dict`` does): the
params JAX got from ``lower`` share the module's memory on the CPU, and JAX assumes its arrays
never change. Writing in place would silently change those "old" JAX arrays (and any adapter
holding them). So each tensor gets a fresh buffer (64-byte aligned on the CPU, so a later
``lower`` shares it again) through ``tensor.data``: the ``Parameter`` objects stay the same
(a torch optimizer holding them still works), arrays made from the old buffers keep their
values, and the new buffers share nothing with the caller's arrays.

Everything is checked before anything is written: keys, shapes, dtype kinds, integer ranges,
tied tensors; then every new buffer is filled; only then are they swapped in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import torch

from interop._src import arrays as _arr
from interop._src import dtypes as _dt
from interop._src.bridge import aligned_empty, to_numpy, to_torch

#: keys shown per kind of problem in the error (the counts are always complete)
_SHOWN = 10


def load_params(module: torch.nn.Module, params: Mapping[str, Any]) -> torch.nn.Module:
    """Write ``params`` into ``module``'s parameters and buffers by ``state_dict`` name, strictly.

    The inverse of ``interop.lower``'s params: ``params`` must have exactly the keys of
    ``module.state_dict()``, each an array (JAX, NumPy, torch, or any ``__dlpack__`` object) of
    exactly that entry's shape. Each value is copied into a new buffer with the dtype, device
    and layout the module's tensor has (floats are rounded to it as ``Tensor.copy_`` rounds;
    integers must fit it), e.g. a JAX ``int32`` ``num_batches_tracked`` goes back to ``int64``.

    Nothing is written unless everything fits: missing keys, unexpected keys, wrong shapes,
    non-arrays, a float for an integer buffer (or the like), an integer out of range, and tied
    names (two keys of one tensor) given different values are reported together in one error.

    The ``Parameter`` objects are kept (``requires_grad`` and a torch optimizer holding them
    stay valid); their old buffers are not written to, so arrays made from them (the params
    ``lower`` returned, an adapter's ``params``) keep the old values. While it runs it holds
    one copy of the params beside the module's own.

    Args:
        module: the ``torch.nn.Module`` to load into, e.g. the one given to ``interop.lower``
            or a JAX adapter's ``adapter.module``.
        params: a flat ``{state_dict name: array}`` mapping, e.g. ``lower``'s params after an
            optax step. Arrays must be concrete (not traced inside ``jax.jit``).

    Returns:
        ``module`` itself, now holding the values of ``params``.

    Raises:
        TypeError: ``module`` is not an ``nn.Module``, or ``params`` not a mapping.
        ValueError: ``params`` does not fit the module (every problem listed); nothing was
            written.

    Example:
        >>> forward, params = interop.lower(model, x)
        >>> params = train(forward, params)              # optax steps under jax.jit
        >>> interop.load_params(model, params)           # model(x) now matches forward(params, x)
    """
    if not isinstance(module, torch.nn.Module):
        raise TypeError(
            f"load_params: expected module to be a torch.nn.Module, got {type(module).__name__}."
        )
    if not isinstance(params, Mapping):
        raise TypeError(
            "load_params: expected params to be a mapping {state_dict name: array} (e.g. the "
            f"params interop.lower returned), got {type(params).__name__}. Fix: pass the dict of "
            "arrays itself (for an adapter: adapter.params, not the adapter)."
        )
    targets = _targets(module)
    problems = _problems(targets, params)
    if any(problems.values()):
        raise ValueError(_message(module, targets, params, problems))
    # one new buffer per tensor: tied names were checked to hold one value
    first = {id(t): k for k, t in reversed(targets.items())}
    fresh = [(targets[k], _fresh(targets[k], params[k])) for k in first.values()]
    with torch.no_grad():
        for t, new in fresh:
            t.data = new
    return module


def _targets(module: torch.nn.Module) -> dict[str, Any]:
    """``{state_dict name: the module's own tensor}``; a name that is not one of its
    parameters or buffers (a custom ``_save_to_state_dict``, extra state) maps to None."""
    own = {id(t) for t in module.parameters()} | {id(t) for t in module.buffers()}
    return {
        k: v if isinstance(v, torch.Tensor) and id(v) in own else None
        for k, v in module.state_dict(keep_vars=True).items()
    }


def _problems(targets: dict[str, Any], params: Mapping[str, Any]) -> dict[str, list[str]]:
    """Every reason ``params`` cannot be loaded, by kind (all lists empty when it can)."""
    out: dict[str, list[str]] = {
        "missing": [k for k in targets if k not in params],
        "unexpected": [k if isinstance(k, str) else repr(k) for k in params if k not in targets],
        "not loadable": [],
        "not an array": [],
        "with the wrong shape": [],
        "with the wrong dtype": [],
        "out of range": [],
    }
    fitting = []
    for k, t in targets.items():
        if k not in params:
            continue
        kind, why = _check_value(t, params[k])
        if why is None:
            fitting.append(k)
        else:
            out[kind].append(f"{k} ({why})")
    out["tied but different"] = _tied_but_different(targets, params, fitting)
    return out


def _check_value(t: torch.Tensor | None, value: Any) -> tuple[str, str | None]:
    """``(kind of problem, why)`` for one value against its tensor; ``why`` None when it fits."""
    if t is None:
        return "not loadable", "not a parameter or buffer: use module.load_state_dict"
    if t.is_meta:
        return "not loadable", "the module's is on the meta device: call module.to_empty first"
    if isinstance(value, jax.core.Tracer):
        return "not an array", "a JAX tracer: call load_params outside jax.jit"
    try:
        info = _arr.describe(value)
    except TypeError:
        what = "a JAX, NumPy or torch array, or an object with __dlpack__"
        return "not an array", f"expected {what}, got {type(value).__name__}"
    except BufferError as err:  # a JAX array sharded over several devices
        return "not an array", str(err)
    if info.shape != tuple(t.shape):
        return "with the wrong shape", f"expected {tuple(t.shape)}, got {info.shape}"
    want = _dt.TORCH_TO_NAME.get(t.dtype, str(t.dtype))
    if _kind(info.dtype) != _kind(want):
        return "with the wrong dtype", f"the module's is {want}, got {info.dtype}"
    if _kind(want) == "int" and info.size and not _widens(info.dtype, t.dtype):
        values = to_numpy(value)  # NumPy has every integer dtype's min and max
        lo, hi = int(values.min()), int(values.max())
        limits = torch.iinfo(t.dtype)
        if lo < limits.min or hi > limits.max:
            return "out of range", f"values in [{lo}, {hi}] do not fit {want}"
    return "", None


def _kind(dtype: str) -> str:
    """What may be cast into what: precision may change (floats round), the kind may not."""
    if dtype.startswith(("int", "uint")):
        return "int"
    if dtype.startswith(("float", "bfloat")):
        return "float"
    if dtype.startswith("complex"):
        return "complex"
    return dtype


def _widens(src: str, dst: torch.dtype) -> bool:
    """Every value of integer dtype ``src`` fits ``dst``."""
    have, want = torch.iinfo(_dt.NAME_TO_TORCH[src]), torch.iinfo(dst)
    return want.min <= have.min and have.max <= want.max


def _tied_but_different(
    targets: dict[str, Any], params: Mapping[str, Any], fitting: list[str]
) -> list[str]:
    """Names of one tensor (tied weights) given different values: which should win is not
    ours to guess."""
    groups: dict[int, list[str]] = {}
    for k in fitting:
        groups.setdefault(id(targets[k]), []).append(k)
    out = []
    for names in groups.values():
        first = to_torch(params[names[0]])
        for k in names[1:]:
            other = to_torch(params[k])
            if first.dtype != other.dtype or not torch.equal(first, other.to(first.device)):
                out.append(f"{names[0]} and {k} (one tensor in the module: give both one value)")
    return out


def _fresh(t: torch.Tensor, value: Any) -> torch.Tensor:
    """A new tensor like ``t`` (dtype, device, strides) holding ``value``."""
    if t.device.type == "cpu" and t.is_contiguous():
        out = aligned_empty(tuple(t.shape), t.dtype)
    else:
        out = torch.empty_like(t, memory_format=torch.preserve_format)
    src = to_torch(value)  # shares the caller's memory where it can: only read here
    _arr.synchronize(src)
    with torch.no_grad():
        out.copy_(src)
    return out


def _message(
    module: torch.nn.Module,
    targets: dict[str, Any],
    params: Mapping[str, Any],
    problems: dict[str, list[str]],
) -> str:
    parts = [f"{len(ps)} {kind}: {_first(ps)}" for kind, ps in problems.items() if ps]
    hint = _hint(targets, params, problems)
    return (
        f"load_params: params do not fit {type(module).__name__}'s {len(targets)} state_dict "
        f"entries; {'; '.join(parts)}. Nothing was written. Fix: give exactly the keys of "
        "module.state_dict(), each an array of that entry's shape (start from the params "
        f"interop.lower returned for this module and replace values).{hint}"
    )


def _first(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f", ... ({len(items) - _SHOWN} more)" if len(items) > _SHOWN else "")


def _hint(targets: dict[str, Any], params: Mapping[str, Any], problems: dict) -> str:
    """A likely cause when keys do not match: a nested dict, or a prefix on one side."""
    missing = problems["missing"]
    unexpected = [k for k in params if k not in targets]
    if not (missing and unexpected):
        return ""
    for k in unexpected:
        if isinstance(params[k], Mapping) and set(params[k]) & set(targets):
            return f" params[{k!r}] is itself such a mapping: pass that."
    for extra, short in ((unexpected, missing), (missing, unexpected)):
        names = {str(k) for k in short}
        prefixes = {_prefix(str(e), names) for e in extra} - {None}
        if len(prefixes) == 1:
            side = "params'" if extra is unexpected else "module's"
            return f" The {side} keys carry a prefix {prefixes.pop()!r} the others lack: strip it."
    return ""


def _prefix(key: str, names: set) -> str | None:
    """The part of ``key`` before a ``.`` after which the rest is one of ``names``."""
    for i, c in enumerate(key):
        if c == "." and key[i + 1 :] in names:
            return key[: i + 1]
    return None
