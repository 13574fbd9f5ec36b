"""Outputs defined only up to sign, phase or order, and the part of them that is defined.

Singular vectors and eigenvectors are unique only up to a sign (a phase, for complex) per
vector, and ``linalg.eig`` returns its eigenvalues in no specified order (LAPACK builds
differ: MKL and the LAPACK JAX calls order about 4% of random 8x8-20x20 matrices
differently). Two correct implementations may then differ elementwise, so for the entries
in ``GAUGE`` the harness compares what torch defines instead:

- ``"process"``: both sides through the sample's own ``output_process_fn_grad``, the map
  torch's OpInfo tests use for these ops (``|U|``, ``U @ Vh`` and ``S`` for the SVD; the
  eigenvalues and ``|V|`` for ``eigh``);
- ``"eig"``: the lowering's eigenpairs first put in torch's order (each of torch's
  eigenvalues paired with the nearest one left of the lowering's), then as ``"process"``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils import _pytree as tpytree

GAUGE: dict[str, str] = {
    "svd": "process",
    "linalg.svd": "process",
    "linalg.eigh": "process",
    "linalg.eig": "eig",
    "linalg.eigvals": "eig",
}


def defined_part(key: str, sample: Any, raw: Any, got: list) -> tuple[list, list]:
    """``(torch's, the lowering's)`` output leaves reduced to what entry ``key`` defines.

    ``raw`` is torch's output as the op returned it, ``got`` the lowering's output leaves
    (arrays); torch's part comes back as tensors, the lowering's as arrays.
    """
    spec = tpytree.tree_structure(raw)
    ours = tpytree.tree_unflatten([torch.from_numpy(np.array(g)) for g in got], spec)
    if GAUGE[key] == "eig":
        ours = _torch_order(raw, ours)
    with torch.no_grad():
        fn = sample.output_process_fn_grad
        want = tpytree.tree_leaves(fn(raw))
        return want, [t.resolve_conj().numpy() for t in tpytree.tree_leaves(fn(ours))]


def _torch_order(raw: Any, ours: Any) -> Any:
    """``ours`` (eigenvalues, or eigenvalues and eigenvectors) with its eigenpairs permuted to
    the order of torch's eigenvalues in ``raw``."""
    pair = isinstance(raw, tuple)
    w_torch, w_ours = (raw[0], ours[0]) if pair else (raw, ours)
    if w_torch.numel() == 0 or w_torch.shape != w_ours.shape:
        return ours  # nothing to order (or a shape the comparison reports)
    batch, n = w_torch.shape[:-1], w_torch.shape[-1]
    a, b = w_torch.reshape(-1, n).numpy(), w_ours.reshape(-1, n).numpy()
    order = np.stack([_nearest(x, y) for x, y in zip(a, b, strict=True)])
    idx = torch.from_numpy(order).reshape(*batch, n)
    w = torch.take_along_dim(w_ours, idx, dim=-1)
    if not pair:
        return w
    v = torch.take_along_dim(ours[1], idx.unsqueeze(-2).expand_as(ours[1]), dim=-1)
    return type(ours)((w, v))  # a tuple, or torch's linalg_eig return type


def _nearest(want: np.ndarray, have: np.ndarray) -> np.ndarray:
    """For each of ``want`` in turn, the index of the nearest element of ``have`` not taken."""
    left = list(range(len(have)))
    out = []
    for x in want:
        j = min(left, key=lambda i: abs(have[i] - x))
        left.remove(j)
        out.append(j)
    return np.array(out, dtype=np.int64)
