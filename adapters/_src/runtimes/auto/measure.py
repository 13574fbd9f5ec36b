"""Measure the candidates of ``runtime="auto"``: build each runtime of the table from the same
torch adapter (each runs its own first-build check), time the ones that built on one input,
interleaved, and choose the fastest (`measure`).

The torch adapter is the reference every other runtime is checked against, and is timed like
the others. A candidate that cannot run on the device, fails its build or its check, or fails
a timed call is skipped with the reason recorded; it is never chosen.

Timing is kept cheap: the builds already ran each model (their checks), so only a runtime
that compiles on its first call at a new shape (JAX) gets a warm-up call; then rounds call
each candidate once, in a rotating order, until every candidate has `MIN_ROUNDS` calls and the
budget is spent (at most `MAX_ROUNDS`). A candidate whose fastest call is slower than
`PRUNE_FACTOR` times the leader's slowest is out of the race and no longer called; so is every
round once only one candidate is left with its `MIN_ROUNDS` calls.
"""

from __future__ import annotations

import datetime
import os
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch

import interop

from ...adapter import Adapter
from ...errors import BuildError
from ..outputs import interop_array
from ..table import runtime_module

#: the reference runtime (the adapter as its source built it)
REFERENCE = "torch"
#: runtimes that compile on their first call at a new input shape: warmed up before timing
COMPILING = ("jax",)
MIN_ROUNDS = 3
MAX_ROUNDS = 7
#: a candidate whose fastest call is slower than this times the leader's slowest is dropped
PRUNE_FACTOR = 2.0
#: another runtime is chosen over the reference only when its median is this much faster:
#: a difference inside the timing noise is no reason to leave the reference's exact numbers
MARGIN = 1.05
#: stop timing after this many budgets even before `MIN_ROUNDS` (very large models)
HARD_CAP = 4.0


def measure(
    adapter: Adapter,
    example: Any,
    candidates: Sequence[str],
    device: str,
    batch_size: int,
    budget_s: float,
) -> tuple[Adapter, dict[str, Any]]:
    """Build every candidate, time the ones that built, return the fastest and the record.

    Returns:
        The chosen adapter and the choice record (JSON-able): ``runtime``, ``speedup`` (the
        reference's median time over the choice's), ``timings`` (per candidate: ``median_s``,
        ``calls_s``), ``skipped`` (candidate -> why), ``build_s``, ``batch_size``,
        ``load`` (``os.getloadavg()`` before and after timing), ``measured`` (UTC time),
        ``device``.
    """
    built: dict[str, Adapter] = {REFERENCE: adapter}
    skipped: dict[str, str] = {}
    build_s: dict[str, float] = {}
    for name in candidates:
        if name == REFERENCE:
            continue
        t0 = time.perf_counter()
        served, why = _build(name, adapter, example, device)
        build_s[name] = round(time.perf_counter() - t0, 3)
        if served is None:
            skipped[name] = why
        else:
            built[name] = served
    x = timing_input(example, batch_size, device)
    load_before = _load()
    calls, failed = time_interleaved(built, x, device, budget_s)
    skipped.update(failed)
    timings = {
        name: {"median_s": statistics.median(ts), "calls_s": [round(t, 6) for t in ts]}
        for name, ts in calls.items()
        if name not in failed and ts
    }
    choice = _fastest(timings) if timings else REFERENCE
    ref = timings.get(REFERENCE, {}).get("median_s")
    mine = timings.get(choice, {}).get("median_s")
    record = {
        "runtime": choice,
        "speedup": round(ref / mine, 3) if ref and mine else None,
        "timings": timings,
        "skipped": skipped,
        "build_s": build_s,
        "batch_size": batch_size,
        "load": [load_before, _load()],
        "measured": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": device,
    }
    return built[choice], record


def _build(name: str, adapter: Adapter, example: Any, device: str) -> tuple[Adapter | None, str]:
    """The candidate ``name`` built from ``adapter`` (its own first-build check included), or
    None and why not."""
    module = runtime_module(name)
    try:
        module.check_device(device)
    except BuildError as err:
        return None, f"cannot run on {device}: {_first_line(err)}"
    try:
        return module.convert(adapter, example), ""
    except Exception as err:  # any failure of a candidate's build only rules it out
        return None, f"{type(err).__name__}: {_first_line(err)}"


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return (lines[0] if lines else "")[:300]


def _fastest(timings: Mapping[str, Mapping[str, Any]]) -> str:
    """The candidate with the smallest median; the reference unless another beats it by
    `MARGIN`."""
    best = min(timings, key=lambda n: timings[n]["median_s"])
    ref = timings.get(REFERENCE)
    if ref is not None and best != REFERENCE:
        if timings[best]["median_s"] * MARGIN > ref["median_s"]:
            return REFERENCE
    return best


def time_interleaved(
    built: Mapping[str, Adapter], x: Any, device: str, budget_s: float
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Seconds per call of each adapter on ``x``, interleaved (see the module docstring).

    Returns:
        ``(calls, failed)``: each candidate's call times, and candidate -> why for those
        whose call raised (their times are dropped).
    """
    calls: dict[str, list[float]] = {name: [] for name in built}
    failed: dict[str, str] = {}
    if len(built) == 1:
        return calls, failed  # nothing to choose between: no call needed
    live = list(built)
    for name in [n for n in live if n in COMPILING]:
        if _call(built[name], x, device, failed, name) is None:
            live.remove(name)
    start = time.perf_counter()
    for r in range(MAX_ROUNDS):
        order = live[r % len(live) :] + live[: r % len(live)] if live else []
        for name in order:
            seconds = _call(built[name], x, device, failed, name)
            if seconds is None:
                live.remove(name)
            else:
                calls[name].append(seconds)
        live = _prune(live, calls)
        elapsed = time.perf_counter() - start
        enough = r + 1 >= MIN_ROUNDS
        if not live or (enough and (len(live) == 1 or elapsed >= budget_s)):
            break
        if elapsed >= HARD_CAP * budget_s:
            break
    return calls, failed


def _prune(live: list[str], calls: Mapping[str, list[float]]) -> list[str]:
    """``live`` without the candidates that cannot catch the leader (see `PRUNE_FACTOR`)."""
    timed = [n for n in live if calls[n]]
    if len(timed) < 2:
        return live
    leader = min(timed, key=lambda n: statistics.median(calls[n]))
    slowest = max(calls[leader])
    return [n for n in live if n == leader or min(calls[n]) <= PRUNE_FACTOR * slowest]


def _call(adapter: Adapter, x: Any, device: str, failed: dict[str, str], name: str) -> float | None:
    """Seconds of one call of ``adapter`` on ``x`` until its output is ready; None (and the
    reason in ``failed``) when it raised."""
    t0 = time.perf_counter()
    try:
        with torch.inference_mode():
            _wait(adapter(x), device)
    except Exception as err:  # a candidate that fails a call is out, not the whole build
        failed[name] = f"a timed call failed: {type(err).__name__}: {_first_line(err)}"
        return None
    return time.perf_counter() - t0


def _wait(y: Any, device: str) -> None:
    """Block until ``y`` is computed (JAX dispatches asynchronously, so does CUDA)."""
    jax = sys.modules.get("jax")
    if jax is not None:
        jax.block_until_ready(y)
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def timing_input(example: Any, batch_size: int, device: str) -> Any:
    """Random inputs shaped like ``example`` with a batch of ``batch_size``, on ``device``
    (integer inputs repeat the example's first row)."""
    gen = torch.Generator().manual_seed(0)

    def one(a: Any) -> Any:
        if not interop_array(a):
            return a
        t = interop.to_torch(a, copy=True)
        if t.ndim == 0:
            return t
        shape = (batch_size, *t.shape[1:])
        if t.is_floating_point():
            t = torch.randn(shape, generator=gen, dtype=t.dtype)
        else:
            t = t[:1].expand(shape).clone()
        return t.to(device)

    if isinstance(example, Mapping):
        return {k: one(v) for k, v in example.items()}
    if isinstance(example, (list, tuple)):
        return tuple(one(v) for v in example)
    return one(example)


def _load() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # not every platform has a load average
        return None
