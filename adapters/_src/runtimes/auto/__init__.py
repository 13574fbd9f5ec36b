"""The ``auto`` runtime: the fastest runtime that passes its first-build check on this device,
measured once per backbone, input signature and machine, and cached (`convert`).

Its modules: ``measure.py`` (build every candidate, time them interleaved, choose) and
``cache.py`` (the choice's key and entry). The candidates are the other runtimes of the table
(``runtimes/table.py``), looked up by name; each keeps its own cache, so a cached choice
builds only the runtime it names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...adapter import Adapter
from ...errors import BuildError

#: how many images the choice is timed on by default (the batch of a typical embedding run)
DEFAULT_BATCH = 16
#: seconds of timing after the builds, for a model whose calls are short (see ``measure.py``)
DEFAULT_BUDGET_S = 2.0
#: the options of `convert` and their defaults
OPTIONS: dict[str, Any] = {
    "batch_size": DEFAULT_BATCH,
    "budget_s": DEFAULT_BUDGET_S,
    "cache_dir": None,
    "use_cache": True,
}


def convert(adapter: Adapter, example_input: Any = None, **options: Any) -> Adapter:
    """The adapter served by the fastest verified runtime, chosen once and cached.

    On the first build for a backbone (its spec and weights), device, input signature and
    machine, every runtime of the table that accepts the device is built from ``adapter``
    (each runs its own first-build check against torch), the ones that built are timed on one
    random batch of ``batch_size``, interleaved, a few calls each, and the fastest by median
    is kept (torch unless another is at least 5% faster); the choice and its timings are
    cached (``auto/cache.py``). A later build reads the choice and builds only that runtime
    (from its own cache). A candidate that fails its build, its check or a timed call is
    skipped with the reason recorded, never chosen.

    Args:
        adapter: a torch-family `Adapter`; another framework's (an ONNX model, a Flax
            module) is returned as built, with ``info["auto"]`` saying so.
        example_input: what the runtimes trace (see ``runtimes/table.py``); default zeros of
            ``adapter.info["input_shape"]``.
        options: ``batch_size`` (the batch the candidates are timed on, part of the key;
            default `DEFAULT_BATCH`), ``budget_s`` (seconds of timing after the builds, default
            `DEFAULT_BUDGET_S`; every candidate still gets 3 calls unless it falls far behind,
            see ``auto/measure.py``), ``cache_dir`` (where choices are kept; default
            ``<cache root>/auto``), ``use_cache`` (read and write that cache; default True).

    Returns:
        The chosen runtime's adapter. Its ``info["runtime"]`` names the runtime and
        ``info["auto"]`` holds the choice record (``runtime``, ``speedup`` over torch,
        ``timings``, ``skipped`` with reasons, ``build_s``, ``batch_size``, ``load``,
        ``measured``, ``device``) plus ``cache`` (``"hit"``, ``"miss"`` or ``"off: <why>"``)
        and ``choice_path``; `summary` says it in one line.

    Raises:
        BuildError: no ``example_input`` and the model declares no input shape, or a bad
            ``batch_size`` / ``budget_s``.
        TypeError: an option this runtime does not take.
    """
    from .choose import choose

    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(
            f"runtime='auto' takes the options {', '.join(OPTIONS)}, got {unknown}; pass "
            "another runtime's options by naming that runtime (runtime='onnxruntime' or 'jax')."
        )
    chosen = {**OPTIONS, **options}
    _check_options(chosen["batch_size"], chosen["budget_s"])
    return choose(adapter, example_input, **chosen)


def _check_options(batch_size: Any, budget_s: Any) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise BuildError("batch_size", "must be an integer >= 1", got=batch_size)
    if isinstance(budget_s, bool) or not isinstance(budget_s, (int, float)) or budget_s < 0:
        raise BuildError("budget_s", "must be a number of seconds >= 0", got=budget_s)


def check_device(device: str | None) -> None:
    """Every device some candidate accepts (torch accepts every device, so every device)."""


def summary(info: Any) -> str | None:
    """One line of what ``auto`` chose and why, from an adapter's ``info``: ``"onnxruntime,
    4.2x torch, measured at build"`` (or ``measured <date> (cached choice)``); None when
    ``auto`` did not build it."""
    record = info.get("auto") if hasattr(info, "get") else None
    if not isinstance(record, dict):
        return None
    if "why" in record:
        return f"{record['runtime']} ({record['why']})"
    runtime, speedup = record["runtime"], record.get("speedup")
    if runtime != "torch" and speedup:
        how = f"{speedup:.1f}x torch"
    elif len(record.get("timings", {})) > 1:
        how = "no other runtime faster"
    else:
        how = "the only runtime verified"
    when = (
        f"measured {record.get('measured', '?')[:10]} (cached choice)"
        if record.get("cache") == "hit"
        else "measured at build"
    )
    return f"{runtime}, {how}, {when}"


def timings(info: Any) -> str | None:
    """The median time per call each candidate measured, fastest first, in one phrase:
    ``"onnxruntime 103 ms, torch 435 ms, jax 590 ms per batch of 16"``; None when ``auto`` did
    not build it or timed nothing (one candidate left)."""
    record = info.get("auto") if hasattr(info, "get") else None
    found = record.get("timings") if isinstance(record, dict) else None
    if not isinstance(found, dict) or len(found) < 2:
        return None
    order = sorted(found, key=lambda name: found[name]["median_s"])
    each = ", ".join(f"{name} {_ms(found[name]['median_s'])}" for name in order)
    return f"{each} per batch of {record.get('batch_size', '?')}"


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.2g} ms"


def choice_path(info: Any) -> Path | None:
    """Where the choice of an ``auto`` adapter is cached (None when it is not)."""
    record = info.get("auto") if hasattr(info, "get") else None
    path = record.get("choice_path") if isinstance(record, dict) else None
    return Path(path) if path else None
