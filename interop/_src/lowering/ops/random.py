"""Random numbers: ``rand`` / ``randn`` / ``randint`` (and ``_like``), ``normal`` (every
overload), ``uniform``, ``bernoulli``, ``exponential``, ``geometric``, ``cauchy``,
``log_normal``, ``poisson``, ``multinomial``, ``randperm``, and the random layers
``native_dropout`` and ``rrelu``, each drawn with ``jax.random``.

Every op here is registered ``random=``: it takes a keyword-only ``key``, its node's own
key (the interpreter folds the node's index into the key the train-mode ``forward`` is
given; ``None`` for a dropout or rrelu out of training, which draws nothing and lowers in eval
mode too), so one key gives one output and ``jax.jit`` / ``jax.vmap`` over keys work. The draws
follow torch's distributions, not its bit streams: the same seed gives other numbers than
torch. In-place samplers (``x.exponential_()``) reach the graph in their functional form
(``aten.exponential``), which takes ``x`` for its shape and dtype only.

Low-precision floats are drawn in float32 and rounded once, except ``rand`` / ``uniform`` on
``[0, 1)``, drawn in the dtype itself so that rounding never reaches 1.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from interop._src.lowering.ops._helpers import as_dtype, up
from interop._src.lowering.ops.registry import op

#: ``@sampler(name, ...)``: an op that draws random numbers (see the module)
sampler = functools.partial(op, random=True)


def _float(dtype):
    """The dtype to draw a float of ``dtype`` in (float32 for the low-precision floats)."""
    return jnp.float32 if dtype in (jnp.bfloat16, jnp.float16) else dtype


def _uniform(key, shape, dtype):
    """``[0, 1)`` in ``dtype`` (complex: real and imaginary parts each uniform, as torch)."""
    if jnp.issubdtype(dtype, jnp.complexfloating):
        part = jnp.finfo(dtype).dtype
        re, im = jax.random.uniform(key, (2, *shape), part)
        return jax.lax.complex(re, im)
    return jax.random.uniform(key, shape, dtype)


def _normal(key, shape, dtype):
    """Standard normal in ``dtype`` (complex: variance 1/2 per part, as torch and JAX)."""
    return jax.random.normal(key, shape, _float(dtype)).astype(dtype)


@sampler("aten.rand.default")
def rand(size, *, dtype=None, layout=None, device=None, pin_memory=None, key):
    return _uniform(key, tuple(size), as_dtype(dtype) or jnp.float32)


@sampler("aten.rand_like.default")
def rand_like(x, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None, key):
    return _uniform(key, x.shape, as_dtype(dtype) or x.dtype)


@sampler("aten.randn.default")
def randn(size, *, dtype=None, layout=None, device=None, pin_memory=None, key):
    return _normal(key, tuple(size), as_dtype(dtype) or jnp.float32)


@sampler("aten.randn_like.default")
def randn_like(
    x, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None, key
):
    return _normal(key, x.shape, as_dtype(dtype) or x.dtype)


def _randint(key, low, high, shape, dtype):
    """Integers in ``[low, high)``, drawn as int32 (JAX's default int) and cast to ``dtype``."""
    return jax.random.randint(key, shape, low, high, jnp.int32).astype(dtype)


@sampler("aten.randint.default", "aten.randint.low")
def randint(*args, dtype=None, layout=None, device=None, pin_memory=None, key):
    """``randint(high, size)`` or ``randint(low, high, size)``; torch's default dtype is int64."""
    low_, high, size = args if len(args) == 3 else (0, *args)
    return _randint(key, low_, high, tuple(size), as_dtype(dtype) or jnp.int32)


@sampler("aten.randint_like.default", "aten.randint_like.low_dtype")
def randint_like(
    x, *args, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None, key
):
    """``randint_like(x, high)`` or ``randint_like(x, low, high)``."""
    low_, high = args if len(args) == 2 else (0, *args)
    return _randint(key, low_, high, x.shape, as_dtype(dtype) or x.dtype)


def _location_scale(key, loc, scale, shape, dtype, draw):
    """``loc + scale * draw(key, shape)``, computed in float32 for low precision."""
    z = draw(key, shape, _float(dtype))
    return (up(jnp.asarray(loc)) + up(jnp.asarray(scale)) * z).astype(dtype)


@sampler(
    "aten.normal.Tensor_Tensor",
    "aten.normal.Tensor_float",
    "aten.normal.float_Tensor",
)
def normal(mean, std=1.0, *, generator=None, key):
    """``mean`` and ``std`` broadcast together; the dtype is the tensor operand's."""
    shape = jnp.broadcast_shapes(jnp.shape(mean), jnp.shape(std))
    dtype = mean.dtype if isinstance(mean, jax.Array) else std.dtype
    return _location_scale(key, mean, std, shape, dtype, jax.random.normal)


@sampler("aten.normal.float_float")
def normal_sized(
    mean, std, size, *, generator=None, dtype=None, layout=None, device=None, pin_memory=None, key
):
    dtype = as_dtype(dtype) or jnp.float32
    return _location_scale(key, mean, std, tuple(size), dtype, jax.random.normal)


@sampler("aten.normal_functional.default")
def normal_like(x, mean=0.0, std=1.0, *, generator=None, key):
    return _location_scale(key, mean, std, x.shape, x.dtype, jax.random.normal)


@sampler("aten.uniform.default")
def uniform(x, low=0.0, high=1.0, *, generator=None, key):
    """``low + (high - low) * U[0, 1)``; ATen calls the bounds ``from`` and ``to``."""
    return _location_scale(key, low, high - low, x.shape, x.dtype, jax.random.uniform)


@sampler("aten.cauchy.default")
def cauchy(x, median=0.0, sigma=1.0, *, generator=None, key):
    return _location_scale(key, median, sigma, x.shape, x.dtype, jax.random.cauchy)


@sampler("aten.log_normal.default")
def log_normal(x, mean=1.0, std=2.0, *, generator=None, key):
    z = _location_scale(key, mean, std, x.shape, _float(x.dtype), jax.random.normal)
    return jnp.exp(z).astype(x.dtype)


@sampler("aten.exponential.default")
def exponential(x, lambd=1.0, *, generator=None, key):
    return (jax.random.exponential(key, x.shape, _float(x.dtype)) / lambd).astype(x.dtype)


@sampler("aten.geometric.default")
def geometric(x, p, *, generator=None, key):
    """The number of Bernoulli(``p``) trials up to the first success: 1, 2, ..."""
    return jax.random.geometric(key, p, x.shape, jnp.int32).astype(x.dtype)


@sampler("aten.poisson.default")
def poisson(rate, generator=None, *, key):
    """Poisson counts with the elementwise ``rate``, in ``rate``'s dtype."""
    counts = jax.random.poisson(key, up(rate).astype(jnp.float32), rate.shape, jnp.int32)
    return counts.astype(rate.dtype)


@sampler("aten.bernoulli.default", "aten.bernoulli.p", "aten.bernoulli.Tensor")
def bernoulli(x, p=None, *, generator=None, key):
    """1 with probability ``p`` (``x`` itself when not given: its values are the
    probabilities), else 0, in ``x``'s shape and dtype."""
    p = x if p is None else p
    prob = up(p) if isinstance(p, jax.Array) else p
    return jax.random.bernoulli(key, prob, x.shape).astype(x.dtype)


@sampler("aten.multinomial.default")
def multinomial(weights, num_samples, replacement=False, *, generator=None, key):
    """``num_samples`` category indices per row of ``weights`` ((C,) or (B, C), not normalised).

    Gumbel-max: with replacement, the argmax of ``log w + Gumbel`` once per draw; without,
    the top ``num_samples`` of one such perturbation, which draws indices one after the other
    without replacement, each with probability proportional to its weight, as torch does.
    """
    logits = jnp.log(up(weights).astype(jnp.float32))
    if replacement:
        shape = (*weights.shape[:-1], num_samples, weights.shape[-1])
        noise = jax.random.gumbel(key, shape, jnp.float32)
        return jnp.argmax(logits[..., None, :] + noise, axis=-1).astype(jnp.int32)
    noise = jax.random.gumbel(key, weights.shape, jnp.float32)
    return jax.lax.top_k(logits + noise, num_samples)[1].astype(jnp.int32)


@sampler("aten.randperm.default")
def randperm(n, *, dtype=None, layout=None, device=None, pin_memory=None, key):
    return jax.random.permutation(key, n).astype(as_dtype(dtype) or jnp.int32)


def _arg(node, index: int, name: str, default):
    """Argument ``name`` of a graph node, positional at ``index`` or a keyword."""
    return node.args[index] if len(node.args) > index else node.kwargs.get(name, default)


@op("aten.native_dropout.default", random=lambda node: _arg(node, 2, "train", None) is not False)
def native_dropout(x, p, train, *, key):
    """``(x * mask / (1 - p), mask)`` with ``mask`` kept with probability ``1 - p`` (all
    zeros at ``p == 1``); ``train=False`` is the identity with an all-True mask, as ATen."""
    if train is False:
        return x, jnp.ones(x.shape, jnp.bool_)
    mask = jax.random.bernoulli(key, 1.0 - p, x.shape)
    scale = 0.0 if p == 1 else 1.0 / (1.0 - p)
    # torch multiplies by the mask, then by the scale in float (its opmath): rounded once
    return (jnp.where(mask, up(x), 0) * scale).astype(x.dtype), mask


@op(
    "aten.rrelu_with_noise_functional.default",
    random=lambda node: bool(_arg(node, 4, "training", False)),
)
def rrelu(x, noise, lower=0.125, upper=1.0 / 3.0, training=False, generator=None, *, key):
    """Randomised leaky ReLU, ``(out, noise)``: in training each negative input's slope is
    drawn from ``U[lower, upper)`` (the noise is that slope there and 1 elsewhere); out of
    training the slope is their mean and ``noise`` is returned as given."""
    xf = up(x)
    if not training:
        slope = (lower + upper) / 2
        return jnp.where(xf > 0, xf, xf * slope).astype(x.dtype), noise
    slope = jax.random.uniform(key, x.shape, jnp.float32, lower, upper)
    slope = jnp.where(xf > 0, 1.0, slope)
    return (xf * slope).astype(x.dtype), slope.astype(noise.dtype)
