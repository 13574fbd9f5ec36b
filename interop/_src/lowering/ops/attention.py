"""Scaled dot-product attention: one-exp softmax, in blocks for long inputs.

Unmasked attention of 4-D inputs takes one ``exp`` with the softmax's division moved after the
second matmul (``L x E`` divisions, not ``L x S``), on at most ``QUERY_CHUNK`` queries at a
time: for up to ``WHOLE_MAX_KEYS`` keys on every ``batch x heads`` slice at once, beyond that,
on the CPU, in groups of slices whose logits fit in ``BLOCK_BYTES`` (``lax.map``, one group per
step). Masks and causal attention take the dense form, which also returns zeros, not NaN, for
a row with every key masked, as torch's kernel does. Why these forms and bounds:
``interop/_src/lowering/README.md`` (design notes).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from interop._src.lowering.ops.registry import op

#: float32 logits per block (they stay in a CPU's caches)
BLOCK_BYTES = 16 << 20

#: queries per softmax-matmul (XLA's CPU dot slows sharply past this many rows); longer inputs
#: go in chunks of at most this many
QUERY_CHUNK = 256

#: up to this many keys every batch x head slice runs at once; beyond, blocks of slices
WHOLE_MAX_KEYS = 320


def attention(q, k, v, attn_mask, is_causal, scale) -> tuple[Any, Any]:
    """``(out, logsumexp)`` of ATen's SDPA without dropout, for any float dtype."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    if attn_mask is None and not is_causal and _blockable(q, k, v):
        if k.shape[2] <= WHOLE_MAX_KEYS:
            return _query_chunks(q, k, v, scale)
        group = _group(q.shape[1], q.shape[2] * k.shape[2])
        # the blocks keep the logits in a CPU's caches; elsewhere (a GPU) every batch x head
        # slice runs at once: lax.map would serialise the blocks, one small kernel each.
        # Chosen when XLA lowers for the platform the arrays are on, not by JAX's default.
        return lax.platform_dependent(
            q,
            k,
            v,
            cpu=lambda q, k, v: _blocked(q, k, v, scale, group),
            default=lambda q, k, v: _softmax_matmul(q, k, v, scale),
        )
    return _dense(q, k, v, attn_mask, is_causal, scale)


def _mm(a, b) -> jax.Array:
    """a @ b accumulated (and returned) in float32 at least, as torch's CPU kernel does."""
    return jnp.matmul(a, b, preferred_element_type=jnp.promote_types(a.dtype, jnp.float32))


def _blockable(q, k, v) -> bool:
    return q.ndim == k.ndim == v.ndim == 4 and q.shape[:2] == k.shape[:2] == v.shape[:2]


def _group(heads: int, logits_per_slice: int, block_bytes: int | None = None) -> int:
    """Heads per block: the largest divisor of ``heads`` whose logits fit in ``block_bytes``
    (default ``BLOCK_BYTES``), at least one."""
    fit = max(1, (BLOCK_BYTES if block_bytes is None else block_bytes) // (4 * logits_per_slice))
    return max(d for d in range(1, heads + 1) if heads % d == 0 and d <= fit)


def _softmax_matmul(q, k, v, scale) -> tuple[jax.Array, jax.Array]:
    logits = _mm(q, jnp.swapaxes(k, -1, -2)) * scale
    peak = lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True))
    weights = jnp.exp(logits - peak)
    total = jnp.sum(weights, axis=-1, keepdims=True)
    out = _mm(weights.astype(v.dtype), v) / total
    return out.astype(v.dtype), (peak + jnp.log(total))[..., 0]


def _query_chunks(q, k, v, scale) -> tuple[jax.Array, jax.Array]:
    """``_softmax_matmul`` on at most ``QUERY_CHUNK`` queries (axis -2) at a time, in
    near-equal chunks; any leading axes."""
    n = q.shape[-2]
    size = -(-n // -(-n // QUERY_CHUNK))  # ceil(n / ceil(n / QUERY_CHUNK))
    if size >= n:
        return _softmax_matmul(q, k, v, scale)
    parts = [
        _softmax_matmul(lax.slice_in_dim(q, a, min(a + size, n), axis=q.ndim - 2), k, v, scale)
        for a in range(0, n, size)
    ]
    return jnp.concatenate([o for o, _ in parts], -2), jnp.concatenate([s for _, s in parts], -1)


def _blocked(q, k, v, scale, group: int) -> tuple[jax.Array, jax.Array]:
    def slices(x):
        return x.reshape((-1, group, *x.shape[2:]))

    def step(qkv):
        return _query_chunks(*qkv, scale)

    out, lse = lax.map(step, (slices(q), slices(k), slices(v)))
    batch_heads = q.shape[:2]
    return out.reshape(batch_heads + out.shape[2:]), lse.reshape(batch_heads + lse.shape[2:])


def _dense(q, k, v, attn_mask, is_causal, scale) -> tuple[jax.Array, jax.Array]:
    logits = _mm(q, jnp.swapaxes(k, -1, -2)) * scale
    if is_causal:
        lq, lk = q.shape[-2], k.shape[-2]
        logits = jnp.where(jnp.tril(jnp.ones((lq, lk), bool)), logits, -jnp.inf)
    if attn_mask is not None:
        if attn_mask.dtype == jnp.bool_:
            logits = jnp.where(attn_mask, logits, -jnp.inf)
        else:
            logits = logits + attn_mask
    lse = jax.nn.logsumexp(logits, axis=-1)
    # a fully masked row gives zeros, as torch's CPU kernel does (not NaN)
    probs = jnp.where(jnp.isneginf(lse)[..., None], 0.0, jnp.exp(logits - lse[..., None]))
    return _mm(probs.astype(v.dtype), v).astype(v.dtype), lse


# kept whole: one fused softmax here, where the decomposition is mask bookkeeping
@op("aten._scaled_dot_product_flash_attention_for_cpu.default", decompose=False)
def sdpa_flash_cpu(q, k, v, dropout_p=0.0, is_causal=False, *, attn_mask=None, scale=None):
    return attention(q, k, v, attn_mask, is_causal, scale)


# kept whole: its decomposition picks a kernel by the example's device
# (``_scaled_dot_product_flash_attention_for_cpu`` on the CPU, but ``_efficient_attention`` /
# ``_flash_attention`` / ``_cudnn_attention`` for a module on CUDA), so the graph would depend
# on where the torch module lives
@op("aten.scaled_dot_product_attention.default", decompose=False)
def sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, *, scale=None, enable_gqa=False):
    return attention(q, k, v, attn_mask, is_causal, scale)[0]
