"""Downstream heads in JAX/Flax: linear and MLP probes trained with optax.

Features come in as any array the `interop` bridge accepts (torch, NumPy, JAX, ...) and reach
JAX without a copy where the memory allows.

Example:
    >>> fitted = adapters.heads.fit(train_x, train_y, head="mlp", val=(val_x, val_y))
    >>> labels = adapters.heads.predict(fitted, test_x)          # (N,) int
"""

from __future__ import annotations

import functools
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
        mean, std: (dim,) standardisation applied to features before the head,
            ``(x - mean) / std``; ``std`` is the divisor training used (the training std
            floored, see `fit`), so `predict` applies exactly the training transform.
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
        arr = interop.to_jax(x, copy=None, downcast=True)
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
    return arr


def _labels(y: Any, n: int, name: str) -> jax.Array:
    arr = _to_jax(y, name)
    if arr.shape != (n,) or not jnp.issubdtype(arr.dtype, jnp.integer):
        raise ValueError(
            f"{name}: expected ({n},) integer class indices matching the features, "
            f"got {arr.dtype} {arr.shape}"
        )
    return arr


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
    std_floor: float = 0.1,
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
        std_floor: with ``standardize``, no channel is divided by less than ``std_floor``
            times the mean training std over all channels. A channel nearly constant on the
            training rows (a backbone unit that barely fires: std ~1e-5 where a typical
            channel has ~0.2) would otherwise be scaled up ~10^4 times, and the rare new row
            on which it fires swamps the logits. Channels above the floor still get unit
            variance; a channel constant in every row is divided by 1 where all are, as
            scikit-learn's ``StandardScaler`` does. 0 keeps the plain std.

    Returns:
        A `Fitted` head for `predict`.

    Raises:
        ValueError: ``x`` or ``y`` of the wrong shape or dtype, an unknown ``head``, ``epochs``
            or ``batch_size`` below 1, or ``std_floor`` negative or not finite.
    """
    xj = _features(x, "x")
    yj = _labels(y, xj.shape[0], "y")
    n = xj.shape[0]
    if n < 1:
        raise ValueError("x: expected at least one training example, got 0")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size: expected >= 1, got {epochs} and {batch_size}")
    if not np.isfinite(std_floor) or std_floor < 0:
        raise ValueError(
            f"std_floor: expected a finite number >= 0 (a fraction of the mean feature std; "
            f"default 0.1, 0 to divide by the plain std), got {std_floor!r}"
        )
    k = int(num_classes) if num_classes is not None else int(np.asarray(yj).max()) + 1
    module = make_head(head, k) if isinstance(head, str) else head
    if val is not None:
        vx = _features(val[0], "val[0]")
        vy = _labels(val[1], vx.shape[0], "val[1]")
    else:
        vx, vy = xj[:1], yj[:1]  # unused: selection is off, the last epoch is kept
    bs = min(batch_size, n)
    steps = n // bs
    # every epoch's minibatch order up front, on the host: the whole run is one compiled call
    rng = np.random.default_rng(seed)
    orders = np.stack([rng.permutation(n)[: steps * bs].reshape(steps, bs) for _ in range(epochs)])
    floor = float(std_floor) if standardize else None
    train = _trainer(module, float(learning_rate), float(weight_decay), val is not None, floor)
    out = train(jax.random.PRNGKey(seed), xj, yj, vx, vy, orders.astype(np.int32))
    best_params, best_epoch, mean, std, train_loss, val_loss, val_acc = out
    history: dict[str, list[float]] = {"train_loss": np.asarray(train_loss).tolist()}
    if val is not None:
        history["val_loss"] = np.asarray(val_loss).tolist()
        history["val_accuracy"] = np.asarray(val_acc).tolist()
    return Fitted(module, best_params, mean, std, history, int(best_epoch))


@functools.lru_cache(maxsize=32)
def _trainer(
    module: nn.Module,
    learning_rate: float,
    weight_decay: float,
    select: bool,
    std_floor: float | None,
) -> Callable[..., Any]:
    """A jitted ``train(key, x, y, vx, vy, orders)`` for one head and optimiser, cached so
    that repeated fits of the same shapes compile once (initialisation and standardisation
    are inside, so a new shape costs one compilation, not one per eager op).

    ``orders`` is (epochs, steps, batch) indices; ``std_floor`` None turns standardisation
    off. Returns the kept params, the kept epoch, the feature mean and std, and per-epoch
    train loss, val loss and val accuracy.
    """
    optimizer = optax.adamw(learning_rate, weight_decay=weight_decay)
    step = make_train_step(module, optimizer)

    def evaluate(params: Any, vx: jax.Array, vy: jax.Array) -> tuple[jax.Array, jax.Array]:
        logits = module.apply(params, vx)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, vy).mean()
        return loss, (logits.argmax(-1) == vy).mean()

    @jax.jit
    def train(
        key: jax.Array, x: jax.Array, y: jax.Array, vx: jax.Array, vy: jax.Array, orders: Any
    ) -> Any:
        x, vx = x.astype(jnp.float32), vx.astype(jnp.float32)
        y, vy = y.astype(jnp.int32), vy.astype(jnp.int32)
        if std_floor is not None:
            mean, std = _standardization(x, std_floor)
        else:
            mean, std = jnp.zeros(x.shape[1], x.dtype), jnp.ones(x.shape[1], x.dtype)
        x, vx = (x - mean) / std, (vx - mean) / std
        params = module.init(key, x[:1])

        def one_step(carry: Any, idx: jax.Array) -> tuple[Any, jax.Array]:
            p, s, loss = step(*carry, x[idx], y[idx])
            return (p, s), loss

        def one_epoch(carry: Any, inputs: Any) -> tuple[Any, Any]:
            params, opt_state, best_params, best_acc, best_epoch = carry
            epoch, order = inputs
            (params, opt_state), losses = jax.lax.scan(one_step, (params, opt_state), order)
            vloss, vacc = evaluate(params, vx, vy)
            better = vacc > best_acc if select else jnp.bool_(True)
            best_params = jax.tree_util.tree_map(
                lambda new, old: jnp.where(better, new, old), params, best_params
            )
            best_acc = jnp.where(better, vacc, best_acc)
            best_epoch = jnp.where(better, epoch, best_epoch)
            carry = (params, opt_state, best_params, best_acc, best_epoch)
            return carry, (losses.mean(), vloss, vacc)

        init = (params, optimizer.init(params), params, jnp.float32(-1.0), jnp.int32(0))
        epochs = jnp.arange(orders.shape[0], dtype=jnp.int32)
        carry, (tl, vl, va) = jax.lax.scan(one_epoch, init, (epochs, orders))
        return carry[2], carry[4], mean, std, tl, vl, va

    return train


def _standardization(x: jax.Array, std_floor: float) -> tuple[jax.Array, jax.Array]:
    """Mean and divisor (dim,) of (N, dim) training features: the std floored at
    ``std_floor`` times its mean over channels (relative, so the same for features in any
    units), and 1 for a channel that is still 0 (every channel constant)."""
    std = x.std(0)
    std = jnp.maximum(std, std_floor * std.mean())
    return x.mean(0), jnp.where(std > 0, std, 1.0)


def predict(fitted: Fitted, x: Any, *, logits: bool = False) -> np.ndarray:
    """Class indices (N,) for features ``x`` (N, dim), or the (N, num_classes) logits."""
    out = _predictor(fitted.module, logits)(
        fitted.params, fitted.mean, fitted.std, _features(x, "x")
    )
    return np.asarray(out)


@functools.lru_cache(maxsize=32)
def _predictor(module: nn.Module, logits: bool) -> Callable[..., jax.Array]:
    @jax.jit
    def run(params: Any, mean: jax.Array, std: jax.Array, x: jax.Array) -> jax.Array:
        out = module.apply(params, (x.astype(jnp.float32) - mean) / std)
        return out if logits else out.argmax(-1)

    return run
