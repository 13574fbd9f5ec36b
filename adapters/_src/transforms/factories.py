"""Output transforms: small pure functions that turn a backbone's output into features.

Each public name is a factory: it checks its arguments once and returns a plain function of
one argument. The functions take torch tensors, JAX arrays (also tracers under ``jax.jit``) or
NumPy arrays and return the same kind, computed by that framework alone; they trace under
``jax.jit`` and ``torch.compile(fullgraph=True)``. Token extractors also take a ``transformers``
output object and use its ``last_hidden_state``, as eva's extractors do.

Semantics follow kaiko-ai/eva: `cls_token` is ``ExtractCLSFeatures``, `patch_grid` is
``ExtractPatchFeatures``, `as_discrete` is ``AsDiscrete``.

Example:
    >>> features = chain(hidden_state(), cls_token(num_register_tokens=4))
    >>> features(model(pixel_values=x))  # (batch, dim)
    >>> from_specs(spec.transforms)      # the same, from spec records
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from . import checks as _checks
from . import ops as _impl
from . import pick as _pick

__all__ = [
    "Transform",
    "as_discrete",
    "chain",
    "cls_token",
    "hidden_state",
    "l2_normalize",
    "mean_patch",
    "patch_grid",
    "select",
]

#: a transform: one model output in, one value out
Transform = Callable[[Any], Any]


def _named(fn: Transform, name: str, doc: str) -> Transform:
    """Give a returned closure a readable name (tracebacks, reprs) and a docstring."""
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    return fn


# ---------------------------------------------------------------------------------------------
# token extractors
# ---------------------------------------------------------------------------------------------


def cls_token(
    index: int = 0, num_register_tokens: int = 0, include_patch_mean: bool = False
) -> Transform:
    """The CLS token, optionally with the mean of the patch tokens: eva's ``ExtractCLSFeatures``.

    Args:
        index: position of the CLS token (eva: ``cls_index``); negative counts from the end.
        num_register_tokens: register tokens that follow the CLS token.
        include_patch_mean: concatenate the mean of the patch tokens (eva:
            ``include_patch_tokens``). As in eva, the patch tokens are ``x[:, 1 + R:]`` (one
            leading CLS token and ``R`` register tokens skipped) whatever ``index`` is.

    Returns:
        ``f(x)``: (batch, tokens, dim) -> (batch, dim), or (batch, 2 * dim) with the patch mean.

    Raises:
        TypeError: an argument has the wrong type (at once); the input is not an array.
        ValueError: the input is not 3-D, or no patch tokens remain for the mean.
        IndexError: ``index`` is out of range for the token count.
    """
    where = f"cls_token(index={index}, num_register_tokens={num_register_tokens})"
    _checks.check_int("cls_token", "index", index)
    _checks.check_int("cls_token", "num_register_tokens", num_register_tokens, minimum=0)
    _checks.check_bool("cls_token", "include_patch_mean", include_patch_mean)
    start = 1 + num_register_tokens

    def apply(x: Any) -> Any:
        x, fw = _checks.tokens(x, where)
        shape = _impl.shape_of(x)
        _checks.cls_tokens(where, shape, index, num_register_tokens, include_patch_mean)
        cls = x[:, index, :]
        if not include_patch_mean:
            return cls
        return _impl.concat([cls, x[:, start:, :].mean(1)], -1, fw)

    return _named(apply, "cls_token", "(batch, tokens, dim) -> (batch, dim) or (batch, 2*dim).")


def patch_grid(
    has_cls_token: bool = True, num_register_tokens: int = 0, ignore_remaining: bool = False
) -> Transform:
    """Patch tokens as a square feature map: eva's ``ExtractPatchFeatures``.

    Args:
        has_cls_token: the first token is a CLS token (skipped).
        num_register_tokens: register tokens after the CLS token (skipped).
        ignore_remaining: when the patch tokens are not a square number, keep the last
            ``h * w`` tokens (``h = w = isqrt(n)``) instead of raising (eva:
            ``ignore_remaining_dims``).

    Returns:
        ``f(x)``: (batch, tokens, dim) -> ``[(batch, dim, h, w)]``, a one-element list as in
        eva; for torch and NumPy the map is a view of the input (no copy).

    Raises:
        TypeError: an argument has the wrong type (at once); the input is not an array.
        ValueError: the input is not 3-D, no patch tokens remain, or they do not form a square.
    """
    where = f"patch_grid(has_cls_token={has_cls_token}, num_register_tokens={num_register_tokens})"
    _checks.check_bool("patch_grid", "has_cls_token", has_cls_token)
    _checks.check_int("patch_grid", "num_register_tokens", num_register_tokens, minimum=0)
    _checks.check_bool("patch_grid", "ignore_remaining", ignore_remaining)
    skip = int(has_cls_token) + num_register_tokens

    def apply(x: Any) -> list[Any]:
        x, fw = _checks.tokens(x, where)
        batch, _, dim = shape = _impl.shape_of(x)
        start, side = _checks.square_grid(where, shape, skip, ignore_remaining)
        grid = _impl.channels_first(x[:, start:, :], fw).reshape(batch, dim, side, side)
        return [grid]

    return _named(apply, "patch_grid", "(batch, tokens, dim) -> [(batch, dim, h, w)].")


def mean_patch(has_cls_token: bool = True, num_register_tokens: int = 0) -> Transform:
    """The mean of the patch tokens (CLS and register tokens skipped).

    Args:
        has_cls_token: the first token is a CLS token (skipped).
        num_register_tokens: register tokens after the CLS token (skipped).

    Returns:
        ``f(x)``: (batch, tokens, dim) -> (batch, dim).

    Raises:
        TypeError: an argument has the wrong type (at once); the input is not an array.
        ValueError: the input is not 3-D, or no patch tokens remain.
    """
    where = f"mean_patch(has_cls_token={has_cls_token}, num_register_tokens={num_register_tokens})"
    _checks.check_bool("mean_patch", "has_cls_token", has_cls_token)
    _checks.check_int("mean_patch", "num_register_tokens", num_register_tokens, minimum=0)
    skip = int(has_cls_token) + num_register_tokens

    def apply(x: Any) -> Any:
        x, _ = _checks.tokens(x, where)
        start = _checks.patch_start(where, _impl.shape_of(x), skip)
        return x[:, start:, :].mean(1)

    return _named(apply, "mean_patch", "(batch, tokens, dim) -> (batch, dim).")


# ---------------------------------------------------------------------------------------------
# picking from structured outputs
# ---------------------------------------------------------------------------------------------


def hidden_state(name: str | int = "last_hidden_state") -> Transform:
    """A field of a model output object, or an element of a tuple / list output.

    Args:
        name: a field name (attribute or mapping key, e.g. ``"last_hidden_state"``,
            ``"pooler_output"``, ``"hidden_states"``) or an index into a tuple / list (also a
            ``transformers`` output, indexed like its ``to_tuple()``).

    Returns:
        ``f(output)``: the picked value, unchanged (no copy).

    Raises:
        TypeError: ``name`` is neither a non-empty string nor an integer (at once); an index
            is given for an output that is neither a sequence nor a model output.
        ValueError: the output has no such field, or it is None (not returned by the model).
        IndexError: the index is out of range.
    """
    _checks.check_name_or_index("hidden_state", "name", name)
    where = f"hidden_state({name!r})"
    pick = _pick.by_index if _checks.is_int(name) else _pick.by_name

    def apply(output: Any) -> Any:
        return pick(output, name, where)

    return _named(apply, "hidden_state", "model output -> the named field or indexed element.")


def select(indices: int | Sequence[int]) -> Transform:
    """Feature maps picked by index from a list of them (e.g. the output of ``out_indices``).

    Args:
        indices: an index or a non-empty sequence of indices; negative counts from the end.

    Returns:
        ``f(maps)``: a sequence of arrays -> a list of the picked arrays, in ``indices`` order.

    Raises:
        TypeError: ``indices`` are not integers (at once), or the input is not a sequence.
        IndexError: an index is out of range for the number of maps.
    """
    chosen = _checks.indices_of("select", indices)
    where = f"select(indices={list(chosen)})"

    def apply(maps: Any) -> list[Any]:
        return _pick.maps_at(maps, chosen, where)

    return _named(apply, "select", "[maps] -> [maps[i] for i in indices].")


# ---------------------------------------------------------------------------------------------
# elementwise post-processing
# ---------------------------------------------------------------------------------------------


def as_discrete(
    argmax: bool = False,
    to_onehot: int | None = None,
    threshold: float | None = None,
    dim: int = 1,
    keepdim: bool = True,
) -> Transform:
    """Logits -> discrete values: eva's ``AsDiscrete``, in this order.

    Args:
        argmax: take the argmax over ``dim``.
        to_onehot: number of classes: labels with a size-1 ``dim`` become one-hot integers
            with ``to_onehot`` entries there (eva: long; labels are truncated to integers).
        threshold: finally, ``x >= threshold`` (booleans).
        dim: the class axis (eva: 1).
        keepdim: keep ``dim`` (size 1) after argmax, as eva does. Irrelevant with
            ``to_onehot``, which puts the class axis back at ``dim``.

    Returns:
        ``f(x)``: e.g. (batch, classes, ...) -> (batch, 1, ...) labels with ``argmax``.

    Raises:
        TypeError: an argument has the wrong type (at once), or the input is not an array.
        IndexError: ``dim`` is out of range for the input.
        ValueError: ``to_onehot`` without ``argmax`` on an input whose ``dim`` is not size 1.
    """
    _checks.check_bool("as_discrete", "argmax", argmax)
    if to_onehot is not None:
        _checks.check_int("as_discrete", "to_onehot", to_onehot, minimum=1)
    _checks.check_number("as_discrete", "threshold", threshold, optional=True)
    _checks.check_int("as_discrete", "dim", dim)
    _checks.check_bool("as_discrete", "keepdim", keepdim)
    where = f"as_discrete(argmax={argmax}, to_onehot={to_onehot}, dim={dim})"

    def apply(x: Any) -> Any:
        fw = _checks.framework(x, where)
        shape = _impl.shape_of(x)
        axis = _checks.axis_index(where, dim, shape)
        if argmax:
            x = _impl.argmax(x, axis, keepdim or to_onehot is not None, fw)
        if to_onehot is not None:
            _checks.single_channel(where, _impl.shape_of(x), axis, dim)
            x = _impl.one_hot(x, to_onehot, axis, fw)
        if threshold is not None:
            x = x >= threshold
        return x

    return _named(apply, "as_discrete", "logits -> labels / one-hot / booleans.")


def l2_normalize(axis: int = -1, eps: float = 1e-12) -> Transform:
    """Divide by the L2 norm along ``axis`` (``torch.nn.functional.normalize``).

    Args:
        axis: the axis to normalise (e.g. -1 for (batch, dim), 1 for (batch, dim, h, w)).
        eps: lower bound on the norm, so a zero vector stays zero.

    Returns:
        ``f(x)``: an array -> the same shape; a list / tuple of arrays -> a list, each
        normalised (so it follows `patch_grid` or `select`).

    Raises:
        TypeError: an argument has the wrong type (at once), or the input is not an array.
        IndexError: ``axis`` is out of range for the input.
    """
    _checks.check_int("l2_normalize", "axis", axis)
    _checks.check_number("l2_normalize", "eps", eps, minimum=0)
    where = f"l2_normalize(axis={axis})"
    accepted = f"{_impl.ARRAY_KINDS} or a list of them"

    def one(x: Any) -> Any:
        fw = _checks.framework(x, where, accepted)
        return _impl.l2_normalize(x, _checks.axis_index(where, axis, _impl.shape_of(x)), eps, fw)

    def apply(x: Any) -> Any:
        if isinstance(x, (list, tuple)):
            return [one(item) for item in x]
        return one(x)

    return _named(apply, "l2_normalize", "x -> x / ||x||_2 along axis.")


# ---------------------------------------------------------------------------------------------
# composition and records
# ---------------------------------------------------------------------------------------------


def chain(*fns: Transform) -> Transform:
    """Compose transforms left to right: ``chain(f, g)(x) == g(f(x))``; ``chain()`` is the identity.

    Args:
        fns: transforms (any callables of one argument).

    Returns:
        ``f(x)``: each of ``fns`` applied in turn.

    Raises:
        TypeError: an argument is not callable (names its position).
    """
    for i, fn in enumerate(fns):
        if not callable(fn):
            raise TypeError(
                f"chain: argument {i} must be a transform (a callable), got {fn!r} "
                f"({type(fn).__name__}). Build one with e.g. cls_token() or from_spec(record)."
            )

    def apply(x: Any) -> Any:
        for fn in fns:
            x = fn(x)
        return x

    names = ", ".join(getattr(fn, "__name__", type(fn).__name__) for fn in fns)
    return _named(apply, f"chain({names})", "The transforms applied left to right.")
