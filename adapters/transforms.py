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

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from specs import (
    AsDiscrete,
    ClsToken,
    HiddenState,
    L2Normalize,
    MeanPatch,
    PatchGrid,
    Select,
)

from ._src import transforms_impl as _impl

__all__ = [
    "Transform",
    "as_discrete",
    "chain",
    "cls_token",
    "from_spec",
    "from_specs",
    "hidden_state",
    "l2_normalize",
    "mean_patch",
    "patch_grid",
    "select",
]

#: a transform: one model output in, one value out
Transform = Callable[[Any], Any]


# ---------------------------------------------------------------------------------------------
# argument checks (run once, when the transform is made)
# ---------------------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(where: str, name: str, value: Any, minimum: int | None = None) -> None:
    if not _is_int(value) or (minimum is not None and value < minimum):
        expected = "an integer" if minimum is None else f"an integer >= {minimum}"
        raise TypeError(
            f"{where}: argument {name!r} must be {expected}, got {value!r} ({type(value).__name__})."
        )


def _check_bool(where: str, name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(
            f"{where}: argument {name!r} must be True or False, got {value!r} "
            f"({type(value).__name__})."
        )


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
    _check_int("cls_token", "index", index)
    _check_int("cls_token", "num_register_tokens", num_register_tokens, minimum=0)
    _check_bool("cls_token", "include_patch_mean", include_patch_mean)
    start = 1 + num_register_tokens

    def apply(x: Any) -> Any:
        x, fw = _impl.tokens(x, where)
        shape = _impl.shape_of(x)
        num_tokens = shape[1]
        if not -num_tokens <= index < num_tokens:
            raise IndexError(
                f"{where}: CLS index {index} is out of range for {num_tokens} tokens; expected "
                f"shape (batch, tokens > {index if index >= 0 else -index - 1}, dim), got {shape}."
            )
        cls = x[:, index, :]
        if not include_patch_mean:
            return cls
        if num_tokens <= start:
            raise ValueError(
                f"{where}: include_patch_mean needs patch tokens after the CLS and "
                f"{num_register_tokens} register tokens; expected shape (batch, tokens > {start}, "
                f"dim), got {shape}. Check num_register_tokens."
            )
        return _impl.concat([cls, x[:, start:, :].mean(1)], -1, fw)

    return _named(apply, "cls_token", "(batch, tokens, dim) -> (batch, dim) or (batch, 2*dim).")


def _patch_start(where: str, shape: tuple[int, ...], skip: int) -> int:
    if shape[1] <= skip:
        raise ValueError(
            f"{where}: expected patch tokens after the {skip} leading CLS/register tokens, i.e. "
            f"shape (batch, tokens > {skip}, dim), got {shape}. Check has_cls_token and "
            "num_register_tokens."
        )
    return skip


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
        ValueError: the input is not 3-D, no patch tokens remain, or they do not form a square.
    """
    where = f"patch_grid(has_cls_token={has_cls_token}, num_register_tokens={num_register_tokens})"
    _check_bool("patch_grid", "has_cls_token", has_cls_token)
    _check_int("patch_grid", "num_register_tokens", num_register_tokens, minimum=0)
    _check_bool("patch_grid", "ignore_remaining", ignore_remaining)
    skip = int(has_cls_token) + num_register_tokens

    def apply(x: Any) -> list[Any]:
        x, fw = _impl.tokens(x, where)
        shape = _impl.shape_of(x)
        batch, num_tokens, dim = shape
        start = _patch_start(where, shape, skip)
        num_patches = num_tokens - start
        side = math.isqrt(num_patches)
        if side * side != num_patches:
            if not ignore_remaining:
                lo, hi = side * side, (side + 1) ** 2
                raise ValueError(
                    f"{where}: {num_patches} patch tokens (of {num_tokens} tokens, shape {shape}) "
                    f"do not form a square grid; expected {skip} + a square number of tokens "
                    f"such as {skip + lo} or {skip + hi}. Check has_cls_token and "
                    "num_register_tokens, or pass ignore_remaining=True to keep the last "
                    f"{lo} tokens as eva does."
                )
            start = num_tokens - side * side
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
        ValueError: the input is not 3-D, or no patch tokens remain.
    """
    where = f"mean_patch(has_cls_token={has_cls_token}, num_register_tokens={num_register_tokens})"
    _check_bool("mean_patch", "has_cls_token", has_cls_token)
    _check_int("mean_patch", "num_register_tokens", num_register_tokens, minimum=0)
    skip = int(has_cls_token) + num_register_tokens

    def apply(x: Any) -> Any:
        x, _ = _impl.tokens(x, where)
        start = _patch_start(where, _impl.shape_of(x), skip)
        return x[:, start:, :].mean(1)

    return _named(apply, "mean_patch", "(batch, tokens, dim) -> (batch, dim).")


# ---------------------------------------------------------------------------------------------
# picking from structured outputs
# ---------------------------------------------------------------------------------------------


def _fields(output: Any) -> list[str]:
    if isinstance(output, Mapping):
        return [str(k) for k in output]
    if hasattr(output, "_fields"):  # namedtuple
        return list(output._fields)
    return (
        sorted(n for n in vars(output) if not n.startswith("_"))
        if hasattr(output, "__dict__")
        else []
    )


def hidden_state(name: str | int = "last_hidden_state") -> Transform:
    """A field of a model output object, or an element of a tuple / list output.

    Args:
        name: a field name (attribute or mapping key, e.g. ``"last_hidden_state"``,
            ``"pooler_output"``, ``"hidden_states"``) or an index into a tuple / list (also a
            ``transformers`` output, indexed like its ``to_tuple()``).

    Returns:
        ``f(output)``: the picked value, unchanged (no copy).

    Raises:
        ValueError: the output has no such field, or it is None (not returned by the model).
        IndexError: the index is out of range.
        TypeError: an index is given for an output that is neither a sequence nor a model
            output.
    """
    if not (_is_int(name) or (isinstance(name, str) and name)):
        raise TypeError(
            f"hidden_state: argument 'name' must be a field name (non-empty string) or an index "
            f"(integer), got {name!r} ({type(name).__name__})."
        )
    where = f"hidden_state({name!r})"

    def by_index(output: Any) -> Any:
        items = output
        if not isinstance(output, (list, tuple)):
            to_tuple = getattr(output, "to_tuple", None)
            if not callable(to_tuple):
                raise TypeError(
                    f"{where}: an index picks from a tuple, a list or a transformers output, got "
                    f"{type(output).__qualname__}. Use a field name instead."
                )
            items = to_tuple()
        if not -len(items) <= name < len(items):  # type: ignore[operator]
            raise IndexError(
                f"{where}: index {name} is out of range for an output of {len(items)} elements; "
                f"expected an index in [{-len(items)}, {len(items) - 1}]."
            )
        return items[name]

    def by_name(output: Any) -> Any:
        if isinstance(output, Mapping) and name in output:
            value = output[name]
        elif not isinstance(output, Mapping) and hasattr(output, name):  # type: ignore[arg-type]
            value = getattr(output, name)  # type: ignore[arg-type]
        elif hasattr(output, name) and getattr(output, name) is None:  # type: ignore[arg-type]
            value = None  # a transformers output keeps unset fields as None attributes
        else:
            raise ValueError(
                f"{where}: the output ({type(output).__qualname__}) has no field {name!r}; "
                f"expected one of: {', '.join(_fields(output)) or '(no named fields)'}."
            )
        if value is None:
            raise ValueError(
                f"{where}: the output's field {name!r} is None: the model did not return it "
                "(for hidden_states, call the model with output_hidden_states=True)."
            )
        return value

    fn = by_index if _is_int(name) else by_name
    return _named(fn, "hidden_state", "model output -> the named field or indexed element.")


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
    chosen = (indices,) if _is_int(indices) else indices
    if not (
        isinstance(chosen, Sequence)
        and not isinstance(chosen, str)
        and len(chosen) > 0
        and all(_is_int(i) for i in chosen)
    ):
        raise TypeError(
            f"select: argument 'indices' must be an integer or a non-empty list of integers, "
            f"got {indices!r} ({type(indices).__name__})."
        )
    chosen = tuple(chosen)
    where = f"select(indices={list(chosen)})"

    def apply(maps: Any) -> list[Any]:
        if not isinstance(maps, (list, tuple)):
            raise TypeError(
                f"{where}: expected a list or tuple of feature maps, got "
                f"{type(maps).__qualname__}. For a single array, drop this transform."
            )
        n = len(maps)
        bad = [i for i in chosen if not -n <= i < n]
        if bad:
            raise IndexError(
                f"{where}: index {bad[0]} is out of range for {n} feature maps; expected "
                f"indices in [{-n}, {n - 1}]."
            )
        return [maps[i] for i in chosen]

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
    _check_bool("as_discrete", "argmax", argmax)
    if to_onehot is not None:
        _check_int("as_discrete", "to_onehot", to_onehot, minimum=1)
    if threshold is not None and not (
        isinstance(threshold, (int, float)) and not isinstance(threshold, bool)
    ):
        raise TypeError(
            f"as_discrete: argument 'threshold' must be a number or None, got {threshold!r} "
            f"({type(threshold).__name__})."
        )
    _check_int("as_discrete", "dim", dim)
    _check_bool("as_discrete", "keepdim", keepdim)
    where = f"as_discrete(argmax={argmax}, to_onehot={to_onehot}, dim={dim})"

    def apply(x: Any) -> Any:
        fw = _impl.framework_of(x)
        if fw is None:
            raise TypeError(f"{where}: expected {_impl.ARRAY_KINDS}, got {type(x).__qualname__}.")
        shape = _impl.shape_of(x)
        axis = _impl.normalize_axis(dim, x.ndim, where, shape)
        if argmax:
            x = _impl.argmax(x, axis, keepdim or to_onehot is not None, fw)
        if to_onehot is not None:
            if x.shape[axis] != 1:
                raise ValueError(
                    f"{where}: to_onehot expects labels with a single channel at dim {dim}, i.e. "
                    f"shape {(*shape[:axis], 1, *shape[axis + 1 :])}, got {shape}. Pass "
                    "argmax=True to take the argmax over that axis first."
                )
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
    _check_int("l2_normalize", "axis", axis)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or eps < 0:
        raise TypeError(f"l2_normalize: argument 'eps' must be a number >= 0, got {eps!r}.")
    where = f"l2_normalize(axis={axis})"

    def one(x: Any) -> Any:
        fw = _impl.framework_of(x)
        if fw is None:
            raise TypeError(
                f"{where}: expected {_impl.ARRAY_KINDS} or a list of them, got "
                f"{type(x).__qualname__}."
            )
        shape = _impl.shape_of(x)
        return _impl.l2_normalize(x, _impl.normalize_axis(axis, x.ndim, where, shape), eps, fw)

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


_FROM_RECORD: dict[type, Callable[[Any], Transform]] = {
    ClsToken: lambda r: cls_token(r.index, r.num_register_tokens, r.include_patch_mean),
    PatchGrid: lambda r: patch_grid(r.has_cls_token, r.num_register_tokens, r.ignore_remaining),
    MeanPatch: lambda r: mean_patch(r.has_cls_token, r.num_register_tokens),
    HiddenState: lambda r: hidden_state(r.name),
    Select: lambda r: select(r.indices),
    AsDiscrete: lambda r: as_discrete(r.argmax, r.to_onehot, r.threshold, r.dim, r.keepdim),
    L2Normalize: lambda r: l2_normalize(r.axis),
}


def from_spec(record: Any) -> Transform:
    """The transform a spec record names (``specs.ClsToken(...)`` -> ``cls_token(...)``).

    Raises:
        TypeError: ``record`` is not a transform record (lists the valid record types).
    """
    make = _FROM_RECORD.get(type(record))
    if make is None:
        valid = ", ".join(f"specs.{t.__name__}" for t in _FROM_RECORD)
        raise TypeError(
            f"from_spec: expected a transform record ({valid}), got {record!r} "
            f"({type(record).__name__})."
        )
    return make(record)


def from_specs(records: Iterable[Any]) -> Transform:
    """``chain`` of the transforms the records name, in order (``spec.transforms``).

    Raises:
        TypeError: an item is not a transform record (names its position).
    """
    fns = []
    for i, record in enumerate(records):
        try:
            fns.append(from_spec(record))
        except TypeError as err:
            raise TypeError(f"transforms[{i}]: {err}") from err
    return chain(*fns)
