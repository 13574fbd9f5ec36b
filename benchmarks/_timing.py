"""Timing helpers shared by every benchmark: interleaved repeats, medians and spreads.

These machines are shared and noisy, so a case is always a *ratio* against a baseline timed
in the same process, the two alternating run by run so that drift hits both equally.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any


def interleaved(
    fns: Mapping[str, Callable[[], Any]],
    *,
    repeats: int = 7,
    number: int = 1,
    warmup: int = 1,
) -> dict[str, dict[str, float]]:
    """Time several thunks alternately; return per-name median and spread of seconds per call.

    Args:
        fns: name -> zero-argument callable. Each call should block until its work is done
            (call ``block_until_ready`` / ``torch.cuda.synchronize`` inside it).
        repeats: rounds; each round times every function once, in rotating order.
        number: calls per timing (for sub-millisecond work).
        warmup: untimed rounds first (compilation, caches).

    Returns:
        ``{name: {"median_s", "min_s", "max_s", "spread"}}`` where ``spread`` is
        ``(max - min) / median`` over the rounds.
    """
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            fn = fns[name]
            start = time.perf_counter()
            for _ in range(number):
                fn()
            samples[name].append((time.perf_counter() - start) / number)
    out = {}
    for name, xs in samples.items():
        med = statistics.median(xs)
        out[name] = {
            "median_s": med,
            "min_s": min(xs),
            "max_s": max(xs),
            "spread": (max(xs) - min(xs)) / med if med > 0 else 0.0,
        }
    return out


def ratio_row(
    case: str,
    timings: Mapping[str, Mapping[str, float]],
    ours: str,
    baseline: str,
    **extra: Any,
) -> dict[str, Any]:
    """One result row: ``ratio = ours / baseline`` (below 1 is faster), with both spreads."""
    o, b = timings[ours], timings[baseline]
    return {
        "case": case,
        "ours": ours,
        "baseline": baseline,
        "ours_s": o["median_s"],
        "baseline_s": b["median_s"],
        "ratio": o["median_s"] / b["median_s"] if b["median_s"] > 0 else float("inf"),
        "spread": max(o["spread"], b["spread"]),
        **extra,
    }


class Skip(Exception):
    """Raised by a suite's ``run`` when it cannot run here (an optional extra is missing).

    The runner prints the message as one line, records the suite as skipped, and goes on.
    """


def load_average() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages (``os.getloadavg``), rounded."""
    return [round(x, 2) for x in os.getloadavg()]
