"""Start-up time of the command line and of the packages, each in a fresh interpreter.

Every case runs ``python -c ...`` or ``python -m adapters --help`` in a subprocess (the same
interpreter and environment as the runner), interleaved with the baseline ``python -c pass``
(the interpreter's own start-up), so ``ours_s - baseline_s`` (``import_s``) is what the
command adds. ``goal_s`` is the issue-16 goal for ``--help`` (under 0.5 s in total); ``met``
compares the median with it. The time depends on the disk cache too: the first round warms it
and is not timed.

Run: ``python -m benchmarks.startup [--full]``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from benchmarks._timing import interleaved, ratio_row

#: case -> (command arguments after the interpreter, goal in seconds or None)
CASES: dict[str, tuple[list[str], float | None]] = {
    "import specs": (["-c", "import specs"], None),
    "import adapters": (["-c", "import adapters"], None),
    "python -m adapters --help": (["-m", "adapters", "--help"], 0.5),
    "python -m adapters list --help": (["-m", "adapters", "list", "--help"], 0.5),
}
BASELINE = "python -c pass"


def _runner(args: list[str]) -> Any:
    def call() -> None:
        subprocess.run([sys.executable, *args], check=True, capture_output=True)

    return call


def run(quick: bool = True) -> Iterator[dict[str, Any]]:
    """One row per case: its wall time against the bare interpreter's start-up."""
    for case, (args, goal) in CASES.items():
        timings = interleaved(
            {case: _runner(args), BASELINE: _runner(["-c", "pass"])},
            repeats=5 if quick else 15,
            warmup=1,
        )
        o, b = timings[case]["median_s"], timings[BASELINE]["median_s"]
        extra: dict[str, Any] = {"import_s": round(o - b, 4)}
        if goal is not None:
            extra.update(goal_s=goal, met=o < goal)
        yield ratio_row(case, timings, case, BASELINE, **extra)


if __name__ == "__main__":
    for r in run(quick="--full" not in sys.argv):
        print(f"{r['case']:34} {r['ours_s']:.3f} s (interpreter {r['baseline_s']:.3f} s)")
