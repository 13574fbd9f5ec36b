"""``_trilinear``, what ``nn.Bilinear`` / ``F.bilinear`` become: three tensors, each with
unit axes inserted (``expand``), multiplied and summed over ``sumdim``; one ``einsum``
(float32 accumulation for low precision)."""

from __future__ import annotations

import string

import jax.numpy as jnp
import torch
from jax import lax

from interop._src.lowering.ops._helpers import up
from interop._src.lowering.ops.registry import op


def _all_expanded(node: torch.fx.Node) -> str | None:
    expand1, expand2, expand3, sumdim = node.args[3:7]
    if (set(expand1) & set(expand2) & set(expand3)) - set(sumdim):
        return "an output axis that no input has (torch gives it size 0)"
    return None


@op("aten._trilinear.default", refuses=_all_expanded)
def trilinear(i1, i2, i3, expand1, expand2, expand3, sumdim, unroll_dim=1):
    letters = string.ascii_letters[: i1.ndim + len(expand1)]
    specs = [
        "".join(c for d, c in enumerate(letters) if d not in expand)
        for expand in (expand1, expand2, expand3)
    ]
    out = "".join(c for d, c in enumerate(letters) if d not in sumdim)
    y = jnp.einsum(
        f"{','.join(specs)}->{out}", up(i1), up(i2), up(i3), precision=lax.Precision.HIGHEST
    )
    return y.astype(i1.dtype)
