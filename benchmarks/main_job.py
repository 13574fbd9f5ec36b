"""The README's first command, timed: ``python -m adapters probe`` on its embedded default,
before and after the speed work of issue 24, in one run.

``python -m benchmarks.main_job [--rounds N] [--out benchmarks/results/main_job.json]``. Each run
is the command in a fresh process (so imports and the backbone build count), with ``--report``
into a temporary folder; it records wall time, the child's CPU time, the load average before
and after, and the test metrics of the head and of the pixel baseline from its
``report.json``. The variants, interleaved round by round:

- ``before``: ``--runtime torch --workers 1`` (the command line's defaults before issue 24:
  torch eager, one thread decoding ahead);
- ``first_build``: the defaults (``--runtime auto``, a decoding thread per core) with an empty
  runtime cache, so ``auto`` exports, lowers, checks and times every runtime first;
- ``cached``: the defaults again on that cache (what every later run of the job costs).

``ratio_*`` is the variant's median wall time over ``before``'s (the goal: at most 0.5). The
README quotes this file; re-run it when the default job changes.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from specs._src.atomic import atomic_write

OUT = Path("benchmarks/results/main_job.json")


#: variant -> the flags it adds to ``probe``
VARIANTS = {"before": ["--runtime", "torch", "--workers", "1"], "first_build": [], "cached": []}


def run_main_job(flags: list[str] = (), env: dict[str, str] | None = None) -> dict:
    """One run of the default job with ``flags`` added; its figures and its output."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "adapters", "probe", *flags, "--report", tmp]
        load_before = os.getloadavg()
        date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        wall = time.perf_counter() - start
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise SystemExit(f"the main job failed (exit {proc.returncode}):\n{proc.stderr}")
        report = json.loads((Path(tmp) / "report.json").read_text())
    return {
        "command": " ".join(["python -m adapters probe", *flags, "--report DIR"]),
        "date": date,
        "exit": proc.returncode,
        "wall_s": wall,
        "cpu_user_s": usage.ru_utime - used.ru_utime,
        "cpu_sys_s": usage.ru_stime - used.ru_stime,
        "load_before": list(load_before),
        "load_after": list(os.getloadavg()),
        "cpu_count": os.cpu_count(),
        "metrics": report["metrics"],
        "baseline": report["baseline"],
        "seconds_embed": report["seconds_embed"],
        "seconds_total": report["seconds_total"],
        "stdout": proc.stdout,
    }


def before_and_after(rounds: int) -> dict:
    """`VARIANTS` interleaved over ``rounds`` rounds, each ``first_build`` on a new empty
    runtime cache that the ``cached`` run after it reuses; runs and median ratios."""
    runs: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "FM_ADAPTERS_CACHE": cache}
            env.pop("FM_ADAPTERS_RUNTIME", None)  # the command line's own default
            for name, flags in VARIANTS.items():
                runs[name].append(run_main_job(flags, env))
                print(f"{name}: {runs[name][-1]['wall_s']:.1f} s", flush=True)
    walls = {name: statistics.median(r["wall_s"] for r in found) for name, found in runs.items()}
    return {
        "rounds": rounds,
        "median_wall_s": walls,
        "ratio_first_build": walls["first_build"] / walls["before"],
        "ratio_cached": walls["cached"] / walls["before"],
        "halved": walls["cached"] <= 0.5 * walls["before"],
        "accuracy": {
            name: [r["metrics"]["accuracy"] for r in found] for name, found in runs.items()
        },
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.main_job")
    parser.add_argument("--out", type=Path, default=OUT, help=f"result file (default: {OUT})")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the variants (default 2)")
    args = parser.parse_args(argv)
    result = before_and_after(args.rounds)
    with atomic_write(args.out) as tmp:
        tmp.write_text(json.dumps(result, indent=1))
    print(result["runs"]["cached"][-1]["stdout"])
    walls = ", ".join(f"{k} {v:.1f} s" for k, v in result["median_wall_s"].items())
    print(
        f"median wall: {walls}; cached/before {result['ratio_cached']:.2f}, first build/before "
        f"{result['ratio_first_build']:.2f}; wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
