"""Run the benchmark suites: ``python -m benchmarks [--quick] [--only NAME ...] [--save]``.

Results go to ``benchmarks/results/local/`` (git-ignored) unless ``--save`` is given, which
updates the committed ``benchmarks/results/`` (the files the READMEs quote), or ``--out DIR``.
They are rewritten after every row, so a run that is stopped keeps what it measured. Each
suite's record holds the machine's load averages before and after it.

Adding a suite: write a module whose ``run(quick: bool)`` returns or yields rows made by
``benchmarks._timing.ratio_row`` (yielding lets each row reach the files as soon as it is
measured) and raises ``benchmarks._timing.Skip("reason")`` when an optional dependency is
missing (a skipped suite keeps the results of its last run in the same directory); then add
one line ``name: module`` to `SUITES`. A suite whose ``run`` also takes ``out`` is given the
results directory, for files of its own (``runtimes.{json,md}``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import inspect
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks import _results
from benchmarks._timing import Skip, load_average

#: suite name -> module; the order is the order they run in
SUITES = {
    "startup": "benchmarks.startup",
    "adapter_overhead": "benchmarks.adapter_overhead",
    "params_check": "benchmarks.params_check",
    "vs_eva": "benchmarks.vs_eva",
    "bridge": "benchmarks.bridge",
    "jax_function": "benchmarks.jax_function",
    "onnx": "benchmarks.onnx_bench",
    "embed": "benchmarks.embed_bench",
    "embed_pipeline": "benchmarks.embed_pipeline",
    "ray": "benchmarks.ray_bench",
    "lowering": "benchmarks.lowering",
    "lowering_coverage": "benchmarks.lowering_coverage",
    "jax_runtime": "benchmarks.jax_runtime",
    "runtimes": "benchmarks.runtimes",
}

#: the committed results (``--save``) and the default, git-ignored, place for a run
RESULTS = Path(__file__).resolve().parent / "results"
LOCAL = RESULTS / "local"


def output_dir(save: bool, out: str | None) -> Path:
    """Where a run writes: ``--out`` if given, else the committed results with ``--save``,
    else the git-ignored ``results/local``."""
    if out is not None:
        return Path(out)
    return RESULTS if save else LOCAL


def run_suites(
    suites: Mapping[str, str], out: Path, *, quick: bool, command: str = ""
) -> dict[str, str]:
    """Run each suite, rewriting ``out/results.{json,md}`` after every row.

    Args:
        suites: name -> module with ``run(quick)`` (see the module docstring).
        out: the results directory; records of suites not run here are kept.
        quick: passed to every suite.
        command: the command line, recorded with each suite.

    Returns:
        ``{name: status}``: ``done``, ``skipped`` or ``error``.
    """
    results = _results.read(out / "results.json")
    info = _results.machine()
    statuses = {}
    for name, module_name in suites.items():
        load = load_average()
        print(f"== {name} (load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f})", flush=True)
        earlier = results["suites"].get(name)
        record: dict[str, Any] = {
            "status": "running",
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "quick": quick,
            "command": command,
            "machine": info,
            "load_before": load,
            "rows": [],
        }
        results["suites"][name] = record
        _results.write(results, out)
        start = time.perf_counter()
        try:
            suite_run = importlib.import_module(module_name).run
            own = {"out": out} if "out" in inspect.signature(suite_run).parameters else {}
            for row in suite_run(quick=quick, **own):
                record["rows"].append(row)
                print(f"  {row['case']}: ratio {row['ratio']:.3g} (spread {row['spread']:.0%})")
                _results.write(results, out)
            record["status"] = "done"
        except Skip as skip:
            record.update(status="skipped", reason=str(skip))
            print(f"  skipped: {skip}", flush=True)
            if earlier is not None and earlier.get("status") == "done":
                print(f"  (kept its results of {earlier.get('date')})", flush=True)
                results["suites"][name] = record = earlier
        except Exception as err:  # one failing suite must not hide the others
            traceback.print_exc()
            record.update(status="error", error=f"{type(err).__name__}: {err}")
        if record is not earlier:
            record.update(seconds=time.perf_counter() - start, load_after=load_average())
        _results.write(results, out)
        if name == "bridge" and record["rows"]:
            _results.plot_bridge(record["rows"], out / "bridge_sizes.png")
        statuses[name] = "skipped" if record is earlier else record["status"]
    return statuses


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns 1 when a suite failed (a skipped one is not a failure)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__.split("\n\n")[0],
        allow_abbrev=False,
    )
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    parser.add_argument("--only", nargs="+", choices=list(SUITES), help="run only these suites")
    parser.add_argument(
        "--save",
        action="store_true",
        help=f"update the committed results in {RESULTS.name}/ (default: {LOCAL.parent.name}/"
        f"{LOCAL.name}/, git-ignored)",
    )
    parser.add_argument("--out", help="write the results here instead")
    args = parser.parse_args(argv)

    out = output_dir(args.save, args.out)
    chosen = {name: module for name, module in SUITES.items() if name in (args.only or SUITES)}
    given = sys.argv[1:] if argv is None else list(argv)
    statuses = run_suites(
        chosen, out, quick=args.quick, command=" ".join(["python -m benchmarks", *given])
    )
    print(f"wrote {out / 'results.json'} and {out / 'results.md'}")
    return 1 if "error" in statuses.values() else 0


if __name__ == "__main__":
    sys.exit(main())
