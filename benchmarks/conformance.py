"""Conformance of ``interop.lower`` with torch's own OpInfo suite (``op_db``), every float dtype.

``python -m benchmarks.conformance [--samples N] [--timeout S] [--only KEY ...] [--dtypes ...]
[--resume] [--out DIR]``. For every ``op_db`` entry and each of float32, bfloat16 and float16
that torch supports on the CPU for it, the first ``N`` samples are lowered, run under
``jax.jit`` and compared with torch eager (``benchmarks/_opinfo.py`` says how, and what each
verdict means); entries on the reviewed list ``benchmarks/conformance_exclusions.py`` are
recorded as ``excluded`` with their reason. Each sample runs in a worker process within
``--timeout`` seconds (``benchmarks/_opinfo_sweep.py``).

Writes ``conformance.json`` (read by ``tests/interop/test_conformance.py``, the CI guard) and
``conformance.md`` into ``--out`` (default ``benchmarks/results``) after every entry, so a run
that is stopped keeps what it measured (``--resume`` goes on from there); ``--only`` replaces
those entries' rows and keeps the others.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path
from typing import Any

from benchmarks import _conformance_report, _opinfo
from benchmarks._opinfo_sweep import Worker
from benchmarks._results import cpu_model, machine
from benchmarks._timing import load_average
from benchmarks.conformance_exclusions import lookup, sample_skips

OUT = Path("benchmarks/results")
FORMAT = 1


def cases(only: list[str] | None, dtypes: list[str]) -> list[tuple[str, str]]:
    """``(entry key, dtype)`` for every entry (or those in ``only``) and supported dtype."""
    entries = _opinfo.entries()
    unknown = sorted(set(only or ()) - set(entries))
    if unknown:
        raise SystemExit(
            f"--only: no op_db entry named {unknown}; keys look like 'add', 'max[binary]'"
        )
    return [
        (key, dtype)
        for key, op in sorted(entries.items())
        if not only or key in only
        for dtype in _opinfo.cpu_dtypes(op)
        if dtype in dtypes
    ]


def _run_record(argv: list[str] | None) -> dict[str, Any]:
    return {
        "command": " ".join(["python -m benchmarks.conformance", *(argv or sys.argv[1:])]),
        "started": _now(),
        "finished": None,
        "load_before": load_average(),
        "load_after": None,
    }


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def read(out: Path) -> dict[str, Any]:
    """The committed results in ``out``, or an empty record."""
    path = out / "conformance.json"
    return json.loads(path.read_text()) if path.exists() else {"rows": []}


def to_json(results: dict[str, Any]) -> str:
    """The results as JSON with one row per line, so that rows measured on two branches merge."""
    head = {k: v for k, v in results.items() if k != "rows"}
    rows = ",\n".join("  " + json.dumps(r) for r in results["rows"])
    text = json.dumps(head, indent=1)[:-2]  # reopen the object to append the rows
    return f'{text},\n "rows": [\n{rows}\n ]\n}}\n'


def write(results: dict[str, Any], out: Path) -> None:
    """``conformance.json`` and ``conformance.md`` into ``out``, each replaced atomically."""
    out.mkdir(parents=True, exist_ok=True)
    results["rows"].sort(key=lambda r: (r["entry"], list(_opinfo.DTYPES).index(r["dtype"])))
    for name, text in (
        ("conformance.json", to_json(results)),
        ("conformance.md", _conformance_report.markdown(results)),
    ):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, out / name)


def measure(key: str, dtype: str, worker: Worker) -> dict[str, Any]:
    """One table row: the entry x dtype's combined verdict, or its exclusion."""
    excluded = lookup(key, dtype)
    row: dict[str, Any] = {"entry": key, "dtype": dtype}
    if excluded is not None and excluded.samples is None:
        reason = f"{excluded.category}: {excluded.reason}"
        return {**row, "verdict": "excluded", "reason": reason, "missing": [], "seconds": 0.0}
    results = list(worker.run(key, dtype))
    seconds = round(sum(r.get("seconds", 0.0) for r in results), 2)
    return {**row, **_opinfo.combine(results), "seconds": seconds}


def plan(
    rows: list[dict[str, Any]], todo: list[tuple[str, str]], resume: bool
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """``(rows kept, cases to measure)``: the cases in ``todo`` are measured again (those
    already in ``rows`` too unless ``resume``), every other row is kept."""
    done = {(r["entry"], r["dtype"]) for r in rows}
    redo = [c for c in todo if not (resume and c in done)]
    again = set(redo)
    return [r for r in rows if (r["entry"], r["dtype"]) not in again], redo


def sweep(args: argparse.Namespace, argv: list[str] | None = None) -> dict[str, Any]:
    """Measure every case, writing the results after each one; returns them."""
    todo = cases(args.only, args.dtypes)
    old = read(args.out)
    run = _run_record(argv)
    results = {
        "format": FORMAT,
        "machine": {**machine(), "cpu_model": cpu_model()},
        "samples": args.samples,
        "timeout_s": args.timeout,
        # each run that wrote rows here, last one last (--only and --resume keep older rows)
        "runs": [*old.get("runs", []), run],
    }
    results["rows"], redo = plan(old.get("rows", []), todo, args.resume)
    worker = Worker(args.samples, args.timeout, sample_skips())
    try:
        for i, (key, dtype) in enumerate(redo):
            row = measure(key, dtype, worker)
            results["rows"].append(row)
            print(f"[{i + 1}/{len(redo)}] {key} {dtype}: {row['verdict']} {row['reason'][:100]}",
                  flush=True)  # fmt: skip
            write(results, args.out)
    finally:
        worker.close()
    run["finished"], run["load_after"] = _now(), load_average()
    write(results, args.out)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.conformance")
    parser.add_argument("--samples", type=int, default=2, help="samples per entry and dtype")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per sample")
    parser.add_argument("--only", nargs="+", help="only these entry keys (e.g. add 'max[binary]')")
    parser.add_argument("--dtypes", nargs="+", default=list(_opinfo.DTYPES),
                        choices=list(_opinfo.DTYPES))  # fmt: skip
    parser.add_argument("--resume", action="store_true", help="skip cases already in --out")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--render", action="store_true",
                        help="rewrite --out's conformance.md from its JSON (after a merge)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.render:
        results = read(args.out)
        write(results, args.out)
    else:
        results = sweep(args, argv)
    for line in _conformance_report.summary_lines(results):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
