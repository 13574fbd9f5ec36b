"""Histograms with a static number of bins: ``histc``, ``histogram`` and ``histogramdd`` (the
bin edges may come from the data: only their count must be static). ``bincount`` is not
here: its output length, ``max(input) + 1``, depends on the data.

ATen's rules: elements outside the outer edges and NaNs are skipped; the last bin is closed on
the right; without a range the outer edges are the data's minimum and maximum, an empty range
widened (``histc`` by 1 on each side, ``histogram`` by 0.5); ``density`` divides by the total
and the bin widths. ``histc`` maps a value to its bin by one division (ATen's
``LINEAR_INTERPOLATION``), ``histogram`` by the edges themselves.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from interop._src.lowering.ops.registry import op


def _outer(x, lo: float | None, hi: float | None, widen: float, data_if_equal: bool):
    """The outer edges: ``(lo, hi)`` when given, else (or, with ``data_if_equal``, when they
    are equal) the data's extrema; an empty range is widened by ``widen`` on each side."""
    if lo is None or (data_if_equal and lo == hi):
        if x.size:
            lo_, hi_ = jnp.min(x), jnp.max(x)
        else:
            lo_ = hi_ = jnp.zeros((), x.dtype)
    else:
        lo_, hi_ = jnp.asarray(lo, x.dtype), jnp.asarray(hi, x.dtype)
    same = lo_ == hi_
    return jnp.where(same, lo_ - widen, lo_), jnp.where(same, hi_ + widen, hi_)


def linspace(lo, hi, n: int):
    """``n`` points from ``lo`` to ``hi`` as ATen's CPU ``linspace`` computes them (the first
    half counted up from ``lo``, the second down from ``hi``)."""
    step = (hi - lo) / max(n - 1, 1)
    i = jnp.arange(n, dtype=lo.dtype)
    return jnp.where(i < n // 2, lo + step * i, hi - step * (n - 1 - i))


def _finite(x, lo, hi):
    """NaN where torch raises for non-finite outer edges (a data-dependent error)."""
    ok = jnp.isfinite(lo) & jnp.isfinite(hi)
    return jnp.where(ok, x, jnp.nan)


@op("aten.histc.default")
def histc(x, bins=100, min=0, max=0):
    v = x.reshape(-1)
    lo, hi = _outer(v, min, max, 1.0, data_if_equal=True)
    inside = (v >= lo) & (v <= hi)
    pos = jnp.floor((v - lo) * bins / (hi - lo)).astype(jnp.int32)
    pos = jnp.clip(pos, 0, bins - 1)
    hist = jnp.zeros((bins,), x.dtype).at[pos].add(inside.astype(x.dtype))
    return _finite(hist, lo, hi)


def _dd(x, edges, weight, density: bool):
    """The histogram of the rows of ``x`` ``(N, D)`` over per-dimension ``edges``."""
    n_bins = [e.shape[0] - 1 for e in edges]
    flat = jnp.zeros(x.shape[:1], jnp.int32)
    inside = jnp.ones(x.shape[:1], bool)
    for d, e in enumerate(edges):
        v = x[:, d]
        inside = inside & (v >= e[0]) & (v <= e[-1])
        pos = jnp.searchsorted(e, v, side="right") - 1
        flat = flat * n_bins[d] + jnp.clip(pos, 0, n_bins[d] - 1)
    w = jnp.ones(x.shape[:1], x.dtype) if weight is None else weight.reshape(-1)
    hist = jnp.zeros((math.prod(n_bins),), x.dtype).at[flat].add(jnp.where(inside, w, 0))
    hist = hist.reshape(n_bins)
    if density:
        hist = hist / jnp.sum(hist)
        for d, e in enumerate(edges):
            shape = [1] * len(edges)
            shape[d] = n_bins[d]
            hist = hist / jnp.diff(e).reshape(shape)
    return hist


def _edges_from_count(x, bins, rng):
    """Per-dimension ``linspace`` edges of ``x`` ``(N, D)``: ``bins`` + 1 each."""
    edges = []
    for d, b in enumerate(bins):
        lo, hi = (None, None) if rng is None else (rng[2 * d], rng[2 * d + 1])
        lo, hi = _outer(x[:, d], lo, hi, 0.5, data_if_equal=False)
        edges.append(_finite(linspace(lo, hi, b + 1), lo, hi))
    return edges


@op("aten.histogram.bin_ct")
def histogram(x, bins=100, *, range=None, weight=None, density=False):
    (edges,) = _edges_from_count(x.reshape(-1, 1), [bins], range)
    return _dd(x.reshape(-1, 1), [edges], weight, density), edges


@op("aten.histogram.bins_tensor")
def histogram_edges(x, bins, *, weight=None, density=False):
    return _dd(x.reshape(-1, 1), [bins.astype(x.dtype)], weight, density), bins


def _rows(x):
    return x.reshape(-1, x.shape[-1])


@op("aten._histogramdd_bin_edges.default")
def histogramdd_bin_edges(x, bins, *, range=None, weight=None, density=False):
    return _edges_from_count(_rows(x), bins, range)


@op("aten._histogramdd_from_bin_cts.default")
def histogramdd_from_bin_cts(x, bins, *, range=None, weight=None, density=False):
    rows = _rows(x)
    return _dd(rows, _edges_from_count(rows, bins, range), weight, density)


@op("aten._histogramdd_from_bin_tensors.default")
def histogramdd_from_bin_tensors(x, bins, *, weight=None, density=False):
    return _dd(_rows(x), [b.astype(x.dtype) for b in bins], weight, density)
