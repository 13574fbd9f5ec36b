"""How a JAX callback reaches torch: two transports sharing one step.

The step (`run_on_views`): views of the operands (torch tensors over JAX's memory, no copy),
moved to the adapter's device, handed to ``body``. The transports differ in what the views
are over and where the outputs go:

* `host` (``jax.pure_callback``): the operands are host JAX arrays; the outputs are returned
  as NumPy arrays of the promised shapes and dtypes;
* `buffer` (``jax.experimental.buffer_callback``): the operands are XLA's own buffers on the
  device the computation runs on (on a GPU, torch runs on XLA's stream); the outputs are
  written into XLA's output buffers.

``body(*operands)`` gets each operand as passed (a dict of params, an array, a list of
cotangents), with every array replaced by its moved torch view.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import torch

from interop._src import arrays as _arr
from interop._src import fast as _fast
from interop._src import torch_call as _tc

try:  # jax >= 0.7; older versions take the host path only
    from jax.experimental.buffer_callback import buffer_callback
except ImportError:  # pragma: no cover - depends on the jax version
    buffer_callback = None

Body = Callable[..., Any]


def _identity(t: Any) -> Any:
    return t


def run_on_views(
    body: Body, operands: tuple[Any, ...], view: Callable[[Any], Any], move: Callable[[Any], Any]
) -> Any:
    """``body`` on views of ``operands`` (each array leaf: ``move(view(leaf))``)."""
    return body(*(jax.tree_util.tree_map(lambda v: move(view(v)), op) for op in operands))


def host(
    body: Body,
    spec: Any,
    *,
    view: Callable[[Any], Any] | None = None,
    move: Callable[[Any], Any] = _identity,
) -> Callable[..., Any]:
    """``f(*operands)`` running ``body`` through ``jax.pure_callback`` on host views.

    Args:
        body: ``body(*operands) -> outputs`` (torch tensors or arrays in ``spec``'s structure).
        spec: the outputs' ``jax.ShapeDtypeStruct`` tree.
        view: how a host operand becomes an array ``body`` takes; default a torch tensor
            over the JAX array's buffer.
        move: where the view goes (the adapter's device); default: stays.
    """
    view = torch_host if view is None else view

    def callback(*operands: Any) -> Any:
        out = run_on_views(body, operands, view, move)
        return jax.tree_util.tree_map(as_numpy_out, out, spec)

    return functools.partial(jax.pure_callback, callback, spec, vmap_method="expand_dims")


def buffer(body: Body, spec: Any, *, move: Callable[[Any], Any] = _identity) -> Any:
    """``f(*operands)`` running ``body`` through ``buffer_callback`` on XLA's buffers.

    The second operand (the input ``x``) decides the stream: on a GPU, torch runs on XLA's.
    """

    def on_buffers(ctx: Any, out: Any, *operands: Any) -> None:
        x = operands[1]
        cuda = _tc.on_cuda([x])
        with _tc.xla_stream(ctx, _tc.from_buffer(x)) if cuda else contextlib.nullcontext():
            _tc.write_outputs(out, run_on_views(body, operands, _tc.from_buffer, move))

    return buffer_callback(on_buffers, spec, vmap_method="expand_dims")


def as_numpy_out(y: Any, spec: jax.ShapeDtypeStruct) -> np.ndarray:
    """One output as the NumPy array ``jax.pure_callback`` promised (shape and dtype)."""
    if isinstance(y, torch.Tensor):
        y = _arr.torch_to_numpy(y.detach().cpu())
    y = np.asarray(y)
    return y if y.dtype == spec.dtype else y.astype(spec.dtype)


def torch_host(v: Any) -> torch.Tensor:
    """A callback argument (a JAX CPU array) as a torch tensor over its buffer."""
    if type(v) is _fast.JAX_ARRAY:
        return _fast.torch_from_jax(v)  # direct: params add up
    return _arr.torch_alias(v)
