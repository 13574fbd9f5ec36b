"""A precision setting on a torch module: its weights' dtype and the call around its forward.

What the settings mean is ``precision.py``'s; here is how torch does it:

- ``-true``: the module is cast once (``module.to(dtype)``, floating parameters and buffers
  only), so no float32 copy of the weights stays alive; floating inputs are cast to the dtype
  inside ``forward`` (callers keep feeding float32 images);
- ``-mixed``: the weights stay float32 and the forward runs under ``torch.autocast`` of the
  params' device type, as Lightning's ``*-mixed`` plugins and timm's ``--amp`` do;
- either way floating outputs are cast to the compute dtype.

A kernel torch lacks for a dtype on a device (its ``RuntimeError: "..." not implemented for
'Half'``) is re-raised naming the precision and what to do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils import _pytree as tpytree

from .errors import BuildError
from .precision import policy

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
#: how torch names the low dtypes in its "not implemented for" errors
_TORCH_NAMES = {"bfloat16": "BFloat16", "float16": "Half"}

#: ``at(body, x) -> y``: ``body(x)`` run at a precision
At = Callable[[Callable[[Any], Any], Any], Any]


def storage_dtype(precision: str) -> torch.dtype | None:
    """The dtype a module's weights are cast to at ``precision`` (None: left float32)."""
    pol = policy(precision)
    return DTYPES[pol.storage] if pol.storage != "float32" else None


def check_device_type(precision: str, device_type: str) -> None:
    """Fail at build time when torch has no autocast for ``device_type``.

    Raises:
        BuildError: a ``-mixed`` setting on a device type torch cannot autocast.
    """
    if policy(precision).mixed and not torch.amp.is_autocast_available(device_type):
        raise BuildError(
            "precision",
            f"torch has no autocast on {device_type!r}, which {precision} needs",
            fix=f"Use {precision.replace('mixed', 'true')} (weights cast) or 32-true there",
        )


def _cast(tree: Any, dtype: torch.dtype) -> Any:
    return tpytree.tree_map_only(
        torch.Tensor, lambda t: t.to(dtype) if t.is_floating_point() else t, tree
    )


def precision_call(precision: str, device_type: str) -> At | None:
    """How a forward runs at ``precision`` on ``device_type`` (``"cpu"``, ``"cuda"``): a
    function ``at(body, x)``; None for ``32-true`` (nothing to do)."""
    pol = policy(precision)
    if not pol.low:
        return None
    compute = DTYPES[pol.compute]

    def at(body: Callable[[Any], Any], x: Any) -> Any:
        try:
            if pol.mixed:
                with torch.autocast(device_type, dtype=compute):
                    y = body(x)
            else:
                y = body(_cast(x, compute))
        except RuntimeError as err:
            if f"not implemented for '{_TORCH_NAMES[pol.compute]}'" not in str(err):
                raise
            raise RuntimeError(
                f"forward: torch has no {pol.compute} kernel for an op of this backbone on "
                f"{device_type!r} ({str(err).strip().splitlines()[0]}), which precision="
                f"{precision!r} needs. Fix: build it at another precision (the other low "
                "dtype, or 32-true), or on a device with the kernel."
            ) from err
        return _cast(y, compute)

    return at
