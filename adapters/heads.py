"""Downstream heads in JAX/Flax: linear and MLP probes trained with optax.

Features come in as any array the `interop` bridge accepts (torch, NumPy, JAX, ...) and reach
JAX without a copy where the memory allows.

Example:
    >>> fitted = adapters.heads.fit(train_x, train_y, head="mlp", val=(val_x, val_y))
    >>> labels = adapters.heads.predict(fitted, test_x)          # (N,) int
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = [
    "HEADS",
    "Fitted",
    "LinearHead",
    "MLPHead",
    "fit",
    "make_head",
    "make_train_step",
    "predict",
]


class LinearHead(nn.Module):
    """(batch, dim) -> (batch, num_classes) logits: one dense layer."""

    num_classes: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return nn.Dense(self.num_classes, name="linear")(x)


class MLPHead(nn.Module):
    """(batch, dim) -> (batch, num_classes) logits: dense -> GELU -> dense, ``depth`` hidden
    layers of width ``hidden``."""

    num_classes: int
    hidden: int = 256
    depth: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i in range(self.depth):
            x = nn.gelu(nn.Dense(self.hidden, name=f"hidden_{i}")(x))
        return nn.Dense(self.num_classes, name="out")(x)


#: ``head=`` names accepted by `fit` and `make_head`
HEADS: dict[str, type[nn.Module]] = {"linear": LinearHead, "mlp": MLPHead}


def make_head(name: str, num_classes: int, **kwargs: Any) -> nn.Module:
    """A head by name (``linear`` or ``mlp``) with ``num_classes`` outputs."""
    if name not in HEADS:
        raise ValueError(f"head: expected one of {', '.join(HEADS)}, got {name!r}")
    return HEADS[name](num_classes=num_classes, **kwargs)


def make_train_step(
    module: nn.Module, optimizer: optax.GradientTransformation
) -> Callable[..., tuple[Any, Any, jax.Array]]:
    """A jit-compiled ``step(params, opt_state, x, y) -> (params, opt_state, loss)``.

    ``x`` is (batch, dim) float, ``y`` (batch,) int class indices; the loss is the mean softmax
    cross-entropy.
    """

    def loss_fn(params: Any, x: jax.Array, y: jax.Array) -> jax.Array:
        logits = module.apply(params, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def step(params: Any, opt_state: Any, x: jax.Array, y: jax.Array) -> tuple[Any, Any, jax.Array]:
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


@attrs.frozen(eq=False)
class Fitted:
    """A trained head: the Flax module, its params, the feature standardisation, the history.

    Attributes:
        module: the Flax head.
        params: its variables, from the epoch with the best validation accuracy (the last
            epoch without validation data).
        mean, std: (dim,) standardisation applied to features before the head.
        history: per epoch ``train_loss`` and (with validation) ``val_loss``, ``val_accuracy``.
        best_epoch: index of the epoch whose params were kept.
    """

    module: nn.Module
    params: Any
    mean: jax.Array
    std: jax.Array
    history: Mapping[str, Sequence[float]]
    best_epoch: int


def _to_jax(x: Any, name: str) -> jax.Array:
    import interop

    try:
        arr = interop.to_jax(x, copy=None)
    except (TypeError, BufferError, ValueError) as err:
        raise TypeError(
            f"{name}: expected an array the interop bridge accepts (torch, NumPy, JAX, DLPack), "
            f"got {type(x).__name__}: {err}"
        ) from err
    return arr


def _features(x: Any, name: str) -> jax.Array:
    arr = _to_jax(x, name)
    if arr.ndim != 2 or not jnp.issubdtype(arr.dtype, jnp.floating):
        raise ValueError(
            f"{name}: expected a (batch, dim) float array, got {arr.dtype} {arr.shape}"
        )
    return arr.astype(jnp.float32)


def _labels(y: Any, n: int, name: str) -> jax.Array:
    arr = _to_jax(y, name)
    if arr.shape != (n,) or not jnp.issubdtype(arr.dtype, jnp.integer):
        raise ValueError(
            f"{name}: expected ({n},) integer class indices matching the features, "
            f"got {arr.dtype} {arr.shape}"
        )
    return arr.astype(jnp.int32)


def fit(
    x: Any,
    y: Any,
    *,
    head: str | nn.Module = "linear",
    num_classes: int | None = None,
    val: tuple[Any, Any] | None = None,
    epochs: int = 100,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    weight_decay: float = 1e-4,
    seed: int = 0,
    standardize: bool = True,
) -> Fitted:
    """Train a head on features with AdamW; keep the params of the best validation epoch.

    Args:
        x: (N, dim) float features (torch, NumPy, JAX, ...; handed to JAX without a copy
            where possible).
        y: (N,) integer class indices.
        head: ``"linear"``, ``"mlp"`` or a Flax module mapping (batch, dim) to logits.
        num_classes: defaults to ``max(y) + 1``.
        val: optional (features, labels) for early selection.
        epochs, batch_size, learning_rate, weight_decay, seed: training settings; minibatches
            are reshuffled every epoch (the last partial batch is dropped).
        standardize: scale features to zero mean, unit variance with the training statistics.

    Returns:
        A `Fitted` head for `predict`.
    """
    xj = _features(x, "x")
    yj = _labels(y, xj.shape[0], "y")
    n = xj.shape[0]
    if n < 1:
        raise ValueError("x: expected at least one training example, got 0")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size: expected >= 1, got {epochs} and {batch_size}")
    k = int(num_classes) if num_classes is not None else int(jnp.max(yj)) + 1
    module = make_head(head, k) if isinstance(head, str) else head
    if standardize:
        mean, std = xj.mean(0), xj.std(0) + 1e-6
    else:
        mean, std = jnp.zeros(xj.shape[1]), jnp.ones(xj.shape[1])
    xs = (xj - mean) / std
    if val is not None:
        vx = (_features(val[0], "val[0]") - mean) / std
        vy = _labels(val[1], vx.shape[0], "val[1]")

    key_init, key_shuffle = jax.random.split(jax.random.PRNGKey(seed))
    params = module.init(key_init, xs[:1])
    optimizer = optax.adamw(learning_rate, weight_decay=weight_decay)
    opt_state = optimizer.init(params)
    step = make_train_step(module, optimizer)
    bs = min(batch_size, n)
    steps = n // bs

    @jax.jit
    def epoch_fn(params: Any, opt_state: Any, key: jax.Array) -> tuple[Any, Any, jax.Array]:
        order = jax.random.permutation(key, n)[: steps * bs].reshape(steps, bs)

        def body(carry: Any, idx: jax.Array) -> tuple[Any, jax.Array]:
            p, s = carry
            p, s, loss = step(p, s, xs[idx], yj[idx])
            return (p, s), loss

        (params, opt_state), losses = jax.lax.scan(body, (params, opt_state), order)
        return params, opt_state, losses.mean()

    @jax.jit
    def evaluate(params: Any, vx: jax.Array, vy: jax.Array) -> tuple[jax.Array, jax.Array]:
        logits = module.apply(params, vx)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, vy).mean()
        return loss, (logits.argmax(-1) == vy).mean()

    history: dict[str, list[float]] = {"train_loss": []}
    if val is not None:
        history |= {"val_loss": [], "val_accuracy": []}
    best, best_epoch, best_params = -1.0, epochs - 1, params
    for epoch, key in enumerate(jax.random.split(key_shuffle, epochs)):
        params, opt_state, loss = epoch_fn(params, opt_state, key)
        history["train_loss"].append(float(loss))
        if val is not None:
            vloss, vacc = evaluate(params, vx, vy)
            history["val_loss"].append(float(vloss))
            history["val_accuracy"].append(float(vacc))
            if float(vacc) > best:
                best, best_epoch, best_params = float(vacc), epoch, params
    if val is None:
        best_params = params
    return Fitted(module, best_params, mean, std, history, best_epoch)


def predict(fitted: Fitted, x: Any, *, logits: bool = False) -> np.ndarray:
    """Class indices (N,) for features ``x`` (N, dim), or the (N, num_classes) logits."""
    xj = (_features(x, "x") - fitted.mean) / fitted.std
    out = fitted.module.apply(fitted.params, xj)
    return np.asarray(out if logits else out.argmax(-1))
