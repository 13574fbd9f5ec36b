"""The statistical comparison of a random OpInfo sample (a ``STATISTICAL`` entry of
``benchmarks/conformance_exclusions.py``): the lowering's distribution against torch's.

A sampler cannot match torch elementwise: the lowering draws from a ``jax.random`` key, torch
from its generator. So the sample's module is lowered in train mode
(``interop.lower(..., train=True)``), drawn ``R`` times (``jax.vmap`` over ``R`` keys), and
torch draws it ``R`` times too (its exported program, seeded ``0 .. R-1``: op_db's own
wrappers reseed torch on every eager call, the exported graph does not). ``R`` grows as the
output shrinks, so that ``R x size`` is about ``ELEMENTS`` (``DRAWS`` bounds it). Each output
leaf must then have, in order:

1. torch's shape and dtype (64-bit narrowed without x64), exactly;
2. every value in the entry's support (``SUPPORTS`` of the exclusions module);
3. the same distribution, as far as five tests on the ``R`` pairs (ours, torch's) can tell:
   the share of draws with a non-finite value; the mean and the mean square (the moments);
   the share above the pooled median and the share farther than the pooled median spread
   from it (robust: Cauchy has no moments).

Each test sums, per draw ``r``, the differences ``f(ours_r) - f(torch_r)`` over the positions
(each position scaled by the spread of ``f`` over both sides' draws pooled), giving ``D_r``.
Draws are independent and a correct lowering draws from torch's distribution, so each pair
is exchangeable and ``D_r`` symmetric about 0 (the scales and medians are pooled, so a swap
leaves them alone). Given the ``|D_r|``, the signs are then fair coins, and Hoeffding's
inequality bounds ``P(|sum D_r| >= c sqrt(sum D_r^2)) <= 2 exp(-c^2 / 2)``: with ``c = BOUND``
a correct lowering fails one test with probability at most ``FALSE_ALARM``, whatever the
distribution, while a shift of ``delta`` standard deviations in a draw's sum shows once
``sqrt(R) * delta`` exceeds about ``BOUND``. The keys and seeds are fixed, so a verdict
repeats exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import torch

import interop
from benchmarks import _opinfo
from benchmarks.conformance_exclusions import Statistical

#: draws per sample: at least, at most, and the elements aimed at (``R x size``)
DRAWS = (64, 1024)
ELEMENTS = 8192
#: the most a correct lowering may fail one test with, and the bound it gives
FALSE_ALARM = 1e-7
BOUND = math.sqrt(2 * math.log(2 / FALSE_ALARM))


def draws_for(size: int) -> int:
    """``R`` for an output of ``size`` elements."""
    return min(DRAWS[1], max(DRAWS[0], math.ceil(ELEMENTS / max(size, 1))))


def _functional(fn: Callable) -> Callable:
    """``fn`` called on a clone of its input: an in-place sampler as a pure function."""
    return lambda inp, *args, **kwargs: fn(inp.clone(), *args, **kwargs)


def run(op: Any, sample: Any, dtype: torch.dtype, stat: Statistical) -> dict[str, Any]:
    """The verdict of one sample of a ``STATISTICAL`` entry (``_opinfo``'s verdicts)."""
    module, tensors = _opinfo.wrap(_functional(op.op) if stat.inplace else op.op, sample)
    try:
        with torch.no_grad():
            first = _opinfo._flat(module(*(t.clone() for t in tensors)))
    except Exception as err:  # torch itself cannot run it: nothing to compare with
        return {"verdict": "skipped", "reason": f"torch eager: {_opinfo.first_line(err)}"}
    size = sum(t.numel() for t in first if isinstance(t, torch.Tensor))
    count = draws_for(size)
    inputs = tuple(_opinfo.to_jax(t) for t in tensors)
    try:
        forward, params = interop.lower(module, tensors, dynamic_batch=False, train=True)
        keys = jax.random.split(jax.random.key(0), count)
        draw = jax.jit(jax.vmap(lambda k: forward(params, inputs, key=k)[0]))
        ours = [np.asarray(a) for a in _opinfo._flat(draw(keys))]
    except interop.LoweringError as err:
        verdict, missing = _opinfo.parse_refusal(str(err))
        return {"verdict": verdict, "reason": _opinfo.lowering_reason(str(err)), "missing": missing}
    except Exception as err:
        return {"verdict": "crash", "reason": _opinfo.first_line(err)}
    theirs = _torch_draws(module, tensors, count)
    if len(ours) != len(theirs):
        return {"verdict": "mismatch", "reason": f"{len(ours)} outputs, torch {len(theirs)}"}
    rtol, atol = _opinfo.TOLERANCE[dtype]
    for i, (o, t) in enumerate(zip(ours, theirs, strict=True)):
        why = _compare(o, t, stat.support, sample, rtol, atol)
        if why:
            return {"verdict": "mismatch", "reason": f"output {i}: {why}"}
    return {"verdict": "match", "reason": f"statistical: {count} draws, support {stat.support}"}


def _torch_draws(module: torch.nn.Module, tensors: tuple, count: int) -> list[torch.Tensor]:
    """Torch's ``count`` draws of each output leaf, stacked on a new axis 0."""
    program = torch.export.export(module, tensors).module()
    runs = []
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        for seed in range(count):
            torch.manual_seed(seed)
            runs.append(_opinfo._flat(program(*(t.clone() for t in tensors))))
    return [torch.stack([r[i] for r in runs]) for i in range(len(runs[0]))]


def _compare(o: np.ndarray, t: torch.Tensor, support: str, sample: Any, rtol, atol) -> str:
    """Why ``o`` (ours, ``(R, ...)``) is not distributed as ``t`` (torch's), or ``""``."""
    if o.shape != tuple(t.shape):
        return f"shape {o.shape[1:]}, torch {tuple(t.shape[1:])}"
    want = _opinfo._numpy(t)
    if o.dtype != _opinfo._canonical(want.dtype):
        return f"dtype {o.dtype}, torch {t.dtype}"
    if o.size == 0:
        return ""
    why = SUPPORT[support](o.astype(np.float64), want.astype(np.float64), sample, rtol, atol)
    if why:
        return f"outside its support ({support}): {why}"
    return distribution(o.reshape(len(o), -1), want.reshape(len(want), -1))


def distribution(ours: np.ndarray, theirs: np.ndarray) -> str:
    """The first of the five tests (see the module) that tells ``ours`` from ``theirs``
    (each ``(draws, positions)``), or ``""``."""
    ours, theirs = ours.astype(np.float64), theirs.astype(np.float64)
    bad_o, bad_t = ~np.isfinite(ours).all(1), ~np.isfinite(theirs).all(1)
    why = _test("non-finite draws", bad_o[:, None], bad_t[:, None])
    keep = ~(bad_o | bad_t)  # a symmetric choice of draws keeps the pairs exchangeable
    ours, theirs = ours[keep], theirs[keep]
    if why or not len(ours):
        return why
    both = np.concatenate([ours, theirs])
    median = np.median(both, axis=0)
    spread = np.median(np.abs(both - median), axis=0)
    tests = (
        ("mean", lambda x: x),
        ("mean square", lambda x: x * x),
        ("share above the median", lambda x: x > median),
        ("share beyond the median spread", lambda x: np.abs(x - median) > spread),
    )
    for name, f in tests:
        why = _test(name, f(ours), f(theirs))
        if why:
            return why
    return ""


def _test(name: str, fo: np.ndarray, ft: np.ndarray) -> str:
    """Hoeffding's sign test on the per-draw sums of ``fo - ft`` (see the module)."""
    fo, ft = fo.astype(np.float64), ft.astype(np.float64)
    scale = np.concatenate([fo, ft]).std(axis=0)
    scale[scale == 0] = 1.0
    d = ((fo - ft) / scale).sum(axis=1)
    norm = math.sqrt(float((d * d).sum()))
    if norm == 0 or abs(float(d.sum())) <= BOUND * norm:
        return ""
    return (
        f"{name} {fo.mean():.4g}, torch {ft.mean():.4g} over {len(d)} draws "
        f"(|z| {abs(float(d.sum())) / norm:.1f} > {BOUND:.1f})"
    )


def _ints(sample: Any) -> list[int]:
    values = (sample.input, *sample.args)
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool)]


def _integers(o, t, sample, rtol, atol) -> str:
    ints = _ints(sample)
    low, high = (0, ints[0]) if len(ints) == 1 else ints[:2]
    if (o != np.round(o)).any() or o.min() < low or o.max() >= high:
        return f"values {np.unique(o)[:8]}, expected integers in [{low}, {high})"
    return ""


def _categories(o, t, sample, rtol, atol) -> str:
    weights = _opinfo._numpy(sample.input).astype(np.float64)
    replacement = (list(sample.args[1:2]) or [sample.kwargs.get("replacement", False)])[0]
    idx = o.astype(np.int64)
    if idx.min() < 0 or idx.max() >= weights.shape[-1]:
        return f"indices {idx.min()}..{idx.max()}, expected 0..{weights.shape[-1] - 1}"
    w = np.broadcast_to(weights, (*idx.shape[:-1], weights.shape[-1]))
    if (np.take_along_axis(w, idx, axis=-1) <= 0).any():
        return "an index of a zero weight"
    distinct = (np.diff(np.sort(idx, axis=-1), axis=-1) != 0).all()
    return "" if replacement or distinct else "an index twice in a row (no replacement)"


def _seen(o, t, sample, rtol, atol) -> str:
    o, t = o.reshape(len(o), -1), t.reshape(len(t), -1)
    for j in range(o.shape[1]):
        values = np.unique(t[:, j])
        close = np.isclose(o[:, j, None], values[None, :], rtol=rtol, atol=atol, equal_nan=True)
        if not close.any(axis=1).all():
            odd = o[~close.any(axis=1), j][0]
            return f"{odd:.6g} at position {j}, where torch drew only {values[:4]}"
    return ""


def _where(ok: Callable[[np.ndarray], np.ndarray], expected: str) -> Callable[..., str]:
    def check(o, t, sample, rtol, atol) -> str:
        bad = ~ok(o)
        return (
            f"{int(bad.sum())} values such as {o[bad][0]:.6g}, expected {expected}"
            if bad.any()
            else ""
        )

    return check


def _real(o, t, sample, rtol, atol) -> str:
    if np.isnan(o).any() and not np.isnan(t).any():
        return f"{int(np.isnan(o).sum())} NaN values, torch none"
    return ""


def _bounds(o, t, sample, rtol, atol) -> str:
    low, high = sample.args[:2]
    return _where(lambda x: (x >= low) & (x <= high), f"values in [{low}, {high}]")(
        o, t, sample, rtol, atol
    )


#: support name (``conformance_exclusions.SUPPORTS``) -> ``(ours, torch's, sample, rtol, atol) -> why``
SUPPORT: dict[str, Callable[..., str]] = {
    "real": _real,
    "nonnegative": _where(lambda x: x >= 0, "values >= 0"),
    "positive": _where(lambda x: x > 0, "values > 0"),
    "binary": _where(lambda x: (x == 0) | (x == 1), "0 or 1"),
    "trials": _where(lambda x: (x >= 1) & (x == np.round(x)), "integers >= 1"),
    "bounds": _bounds,
    "integers": _integers,
    "categories": _categories,
    "seen": _seen,
}
