"""``forward(params, x)`` checks that ``params`` has exactly the module's keys and shapes.

Without it ``functional_call`` silently falls back to the held module's own tensor for a
missing key, so the output would depend on more than ``(params, x)``; an unexpected key or a
wrong shape would surface as a torch error deep inside the model, if at all.

Cost. The check runs on every call that does not pass the adapter's own params (those are
recognised by identity first, and are right by construction): the key set is compared as two
key views and the shapes as one tuple comparison. Nothing is cached between calls (why:
``docs/design/adapters.md``); ``benchmarks/params_check.py`` (suite ``params_check``)
measures the check against the unchecked call.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

import torch

_SHAPE = operator.attrgetter("shape")
#: keys shown in an error, per kind of mismatch
_SHOWN = 3


def params_checker(own: Mapping[str, torch.Tensor]) -> Callable[[Mapping[str, Any]], None]:
    """A function that raises `ValueError` unless its argument matches ``own``'s keys and shapes.

    Args:
        own: the module's params (``{name: tensor}``, as `module_params` returns).

    Returns:
        ``check(params)``: returns None when ``params`` has exactly the keys of ``own`` and a
        tensor of the same shape under each; raises otherwise.
    """
    names = tuple(own)
    keys = own.keys()
    shapes = tuple(t.shape for t in own.values())
    getter = operator.itemgetter(*names) if len(names) > 1 else None

    def values_of(params: Mapping[str, Any]) -> tuple[Any, ...]:
        if getter is None:
            return tuple(params[n] for n in names)
        return getter(params)

    def check(params: Mapping[str, Any]) -> None:
        if not isinstance(params, Mapping) or params.keys() != keys:
            raise mismatch_error(own, params)
        try:
            same = tuple(map(_SHAPE, values_of(params))) == shapes
        except AttributeError:  # a value that is not an array
            same = False
        if not same:
            raise mismatch_error(own, params)

    return check


def mismatch_error(own: Mapping[str, torch.Tensor], params: Mapping[str, Any]) -> ValueError:
    """The error for ``params`` that do not match ``own``: missing, unexpected, wrong shapes."""
    if not isinstance(params, Mapping):
        return ValueError(
            f"forward: params must be a dict of tensors keyed like adapter.params, got "
            f"{type(params).__name__}. Fix: pass adapter.params, or a dict with its keys."
        )
    missing = [k for k in own if k not in params]
    unexpected = [k for k in params if k not in own]
    wrong = [
        f"{k} (expected {tuple(own[k].shape)}, got {_shape_of(params[k])})"
        for k in own
        if k in params and getattr(params[k], "shape", None) != own[k].shape
    ]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing ({_first(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({_first(unexpected)})")
    if wrong:
        parts.append(f"{len(wrong)} with the wrong shape ({_first(wrong)})")
    matching = len(own) - len(missing)
    if unexpected and matching < len(own) / 2:
        lead = (
            f"forward: params look like another model's: only {matching} of this model's "
            f"{len(own)} keys are among its {len(params)} keys"
        )
    else:
        lead = f"forward: params do not match this model's {len(own)} keys and shapes"
    return ValueError(
        f"{lead}: {'; '.join(parts)}. Missing keys are never filled in from the module. "
        "Fix: start from dict(adapter.params) and replace values, keeping every key and shape."
    )


def _first(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f", ... ({len(items) - _SHOWN} more)" if len(items) > _SHOWN else "")


def _shape_of(value: Any) -> str:
    shape = getattr(value, "shape", None)
    return str(tuple(shape)) if shape is not None else f"a {type(value).__name__}"
