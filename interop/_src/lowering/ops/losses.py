"""Losses torch keeps as custom ops: ``F.linear_cross_entropy`` with chunking ``options``
(``torch_nn::_linear_cross_entropy_batch_chunked`` and its ``reduction='none'`` form).

Chunking only bounds torch's memory: the loss is ``cross_entropy(linear(input), target)``
with ATen's rules (class weights, ``ignore_index``, class-index or probability targets), computed here in one piece, in float32 for low precision. The other losses decompose
into core ATen and need nothing here.
"""

from __future__ import annotations

import operator

import jax
import jax.numpy as jnp
import torch
from jax import lax

from interop._src.lowering.ops._helpers import up
from interop._src.lowering.ops.registry import op


def _per_sample(logp, target, weight, ignore_index: int):
    """``(loss per sample, its weight in a mean)`` of ATen's cross entropy on ``(N, C)``
    log-probabilities (class weights; ``ignore_index`` for class-index targets)."""
    w = jnp.ones(logp.shape[-1:], logp.dtype) if weight is None else up(weight)
    if jnp.issubdtype(target.dtype, jnp.floating):  # class probabilities: a mean over samples
        loss = -jnp.sum(logp * up(target) * w, axis=-1)
        return loss, jnp.ones_like(loss)
    valid = target != ignore_index
    t = jnp.where(valid, target, 0)
    wt = jnp.where(valid, w[t], 0)
    return -wt * jnp.take_along_axis(logp, t[:, None], axis=-1)[:, 0], wt


def _linear_cross_entropy(x, lw, target, bias, weight, reduction, ignore_index):
    single = x.ndim == 1
    if single:
        x, target = x[None], target[None]
    logits = jnp.matmul(up(x), up(lw).T, precision=lax.Precision.HIGHEST)
    if bias is not None:
        logits = logits + up(bias)
    logp = jax.nn.log_softmax(logits, axis=-1)
    loss, w = _per_sample(logp, target, weight, ignore_index)
    if reduction == "none":
        return loss[0] if single else loss
    if reduction == "sum":
        return jnp.sum(loss)
    return jnp.sum(loss) / jnp.sum(w)


def _grads_used(node: torch.fx.Node) -> str | None:
    """The chunked op's precomputed gradients are not computed (JAX differentiates the loss)."""
    used = any(u.target is operator.getitem and u.args[1] != 0 and u.users for u in node.users)
    return (
        "its precomputed gradient outputs (differentiate the loss with jax.grad)" if used else None
    )


@op("torch_nn._linear_cross_entropy_batch_chunked.default", refuses=_grads_used)
def linear_cross_entropy_chunked(
    x,
    linear_weight,
    target,
    linear_bias,
    weight,
    reduction,
    ignore_index,
    label_smoothing,
    batch_chunk_size,
    acc_policy,
    acc_dtype,
    allow_retain_graph,
    compute_input_grad,
    compute_linear_weight_grad,
    compute_linear_bias_grad,
):
    loss = _linear_cross_entropy(
        x, linear_weight, target, linear_bias, weight, reduction, ignore_index
    )
    return loss.astype(x.dtype), None, None, None


@op("torch_nn._linear_cross_entropy_batch_chunked_no_reduction.default")
def linear_cross_entropy_chunked_none(
    x, linear_weight, target, linear_bias, weight, ignore_index, batch_chunk_size, acc_policy,
    acc_dtype,
):  # fmt: skip
    loss = _linear_cross_entropy(
        x, linear_weight, target, linear_bias, weight, "none", ignore_index
    )
    return loss.astype(x.dtype)
