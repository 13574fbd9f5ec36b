"""Train mode's ``forward(params, x, *, key) -> (y, new_buffers)`` around the graph walk.

A graph exported in train mode returns, before the module's own outputs, the buffers its
forward updates (batch norm's running statistics and batch count: ``BUFFER_MUTATION`` outputs,
each naming its ``state_dict`` entry). Here they are split off into ``new_buffers``, and the
``key`` the random ops draw from is checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import torch
from torch.export.graph_signature import OutputKind

from interop._src.lowering.errors import LoweringError
from interop._src.lowering.interpreter import draws


def train_forward(
    ep: torch.export.ExportedProgram,
    module_name: str,
    state: dict[str, torch.Tensor],
    run: Callable[..., list[Any]],
    inputs: Callable[[Any], list[Any]],
    outputs: Callable[[list[Any]], Any],
) -> Callable[..., tuple[Any, dict[str, jax.Array]]]:
    """The train-mode forward of ``ep`` (see ``lower``).

    Args:
        ep: the program exported in train mode.
        module_name: the module's class name, for the error.
        state: the module's ``state_dict`` (every updated buffer must be in it).
        run: the interpreter's ``(params, leaves, key) -> every graph output``.
        inputs: ``x`` -> its checked leaves.
        outputs: the user outputs' leaves -> the module's output structure.

    Raises:
        LoweringError: the forward updates a buffer that ``state_dict`` lacks (non-persistent).
    """
    updated = [
        (i, s.target)
        for i, s in enumerate(ep.graph_signature.output_specs)
        if s.kind == OutputKind.BUFFER_MUTATION
    ]
    dropped = [name for _, name in updated if name not in state]
    if dropped:
        raise LoweringError(
            f"cannot lower {module_name} in train mode: its forward updates the "
            f"non-persistent buffer(s) {', '.join(dropped)}, which params (the state_dict) do "
            "not carry; register them with persistent=True, or lower in eval mode."
        )
    user = [
        i for i, s in enumerate(ep.graph_signature.output_specs) if s.kind == OutputKind.USER_OUTPUT
    ]
    random_ops = draws(ep)

    def forward(
        params: dict[str, Any], x: Any, *, key: Any = None
    ) -> tuple[Any, dict[str, jax.Array]]:
        leaves = inputs(x)
        _check_key(key, random_ops)
        out = run(params, leaves, key)
        return outputs([out[i] for i in user]), {name: out[i] for i, name in updated}

    return forward


def _check_key(key: Any, random_ops: list[str]) -> None:
    if key is None:
        if random_ops:
            raise ValueError(
                f"forward: this module draws random numbers ({', '.join(random_ops)}) and no "
                "key was given; pass key=jax.random.key(0) (a new key each step: "
                "jax.random.split or jax.random.fold_in(key, step))."
            )
        return
    dtype, shape = getattr(key, "dtype", None), getattr(key, "shape", None)
    typed = dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
    raw = dtype == jnp.uint32 and shape == (2,)
    if not (typed and shape == ()) and not raw:
        raise TypeError(
            f"forward: key must be one jax.random key (jax.random.key(0), or the raw "
            f"jax.random.PRNGKey(0)), got {type(key).__name__} of dtype {dtype} and shape "
            f"{shape}; under jax.vmap, map over a batch of keys."
        )
