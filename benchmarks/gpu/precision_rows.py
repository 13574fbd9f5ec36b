"""The precision rows of the backbone parts: each low setting against ``32-true`` on one runtime.

Which settings each runtime gets (`LOW`): torch and the JAX runtime ``bf16-true`` and
``16-true``; ONNX Runtime ``16-true`` only (its float16 export; no bfloat16 matmul and
convolution kernels, so ``adapters.build`` refuses bfloat16 there). A row times the backbone
built at the setting against the same runtime's ``32-true`` build, interleaved in one process
(``ratio`` below 1: the setting is faster). The parts call `rows` once per runtime:
``adapter`` (torch), ``lowered`` (the JAX runtime, ``jax.jit`` of its forward) and ``onnx``
(ONNX Runtime).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from benchmarks.gpu._common import Recorder, error_text

#: runtime -> the low settings it gets rows for, in the order they are built and timed
LOW: dict[str, tuple[str, ...]] = {
    "torch": ("bf16-true", "16-true"),
    "jax": ("bf16-true", "16-true"),
    "onnxruntime": ("16-true",),
}
BASE = "32-true"


def cases(part: str, runtime: str, label: str) -> list[str]:
    """The row names `rows` adds for ``runtime`` (``"<part> <label> <setting> vs 32-true"``)."""
    return [f"{part} {label} {precision} vs {BASE}" for precision in LOW[runtime]]


def rows(
    rec: Recorder,
    part: str,
    runtime: str,
    label: str,
    calls: Mapping[str, Callable[[], Any]],
    *,
    repeats: int,
    number: int,
    **extra: Any,
) -> None:
    """Time ``calls`` (setting -> a thunk that blocks until its output is ready; ``32-true``
    among them) interleaved, and add one row per low setting of ``runtime`` against
    ``32-true``. A setting missing from ``calls`` (its build failed or was skipped, which the
    part recorded) gets no row."""
    from benchmarks._timing import interleaved, load_average, ratio_row

    timed = {k: v for k, v in calls.items() if k == BASE or k in LOW[runtime]}
    if BASE not in timed or len(timed) < 2:
        return
    named = [(p, c) for p, c in zip(LOW[runtime], cases(part, runtime, label), strict=True)]
    named = [(p, c) for p, c in named if p in timed]
    try:
        timings = interleaved(timed, repeats=repeats, number=number, warmup=2)
    except Exception as err:  # a kernel fault at one setting: every row says so
        rec.rows.extend({"case": c, "error": error_text(err)} for _, c in named)
        return
    for precision, case in named:
        rec.row(
            case,
            lambda p=precision, c=case: ratio_row(
                c, timings, p, BASE, runtime=runtime, loadavg=load_average(), **extra
            ),
        )
