"""The ONNX -> JAX conformance table: the ONNX backend node tests, offline, through
``interop.onnx_lowering``: ``python -m benchmarks.onnx_conformance [--out DIR]``.

Writes ``onnx_conformance.json`` and ``onnx_conformance.md`` (default: the committed
``benchmarks/results/``): one row per op type the table claims (the op under test of each node
test, see ``benchmarks/_onnx_node_tests.py``) with its tests, passed, refused (and why),
excluded, mismatches and crashes; the op types of the backend suite the table does not claim,
with their test counts; and the totals against the goal (>= 90% of the counted tests passed,
0 mismatches, 0 crashes). Counted: tests declaring opset 13 or newer whose element types the
table computes in (``dtype`` cases are listed, not counted). Eager (no ``jit``): each op is the
same JAX function either way.
"""

from __future__ import annotations

import argparse
import collections
import datetime as _dt
import json
import re
import time
from pathlib import Path
from typing import Any

from benchmarks._onnx_node_tests import OUTCOMES, node_tests, ops_under_test, opset, run_case
from benchmarks._timing import load_average

RESULTS = Path(__file__).parent / "results"
GOAL = 0.9


def measure() -> dict[str, Any]:
    """Every node test's outcome, grouped by the op under test."""
    from interop.onnx_lowering import OPS

    start, load_before = time.perf_counter(), load_average()
    under = ops_under_test()
    rows: dict[str, dict[str, Any]] = {}
    unclaimed: collections.Counter = collections.Counter()
    old = 0
    for case in node_tests():
        op = under[case.name]
        if op not in OPS:
            unclaimed[op] += 1
            continue
        if opset(case) < 13:
            old += 1
            continue
        outcome, detail = run_case(case)
        row = rows.setdefault(op, {**dict.fromkeys(OUTCOMES, 0), "reasons": {}, "failures": {}})
        row[outcome] += 1
        if outcome in ("refused", "excluded", "dtype"):
            row["reasons"][detail[:160]] = row["reasons"].get(detail[:160], 0) + 1
        if outcome in ("mismatch", "crash"):
            row["failures"][case.name] = detail
    totals = {k: sum(r[k] for r in rows.values()) for k in OUTCOMES}
    counted = sum(totals[k] for k in ("passed", "refused", "mismatch", "crash"))
    return {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - start, 1),
        "load_before": load_before,
        "load_after": load_average(),
        "claimed": sorted(OPS),
        "rows": dict(sorted(rows.items())),
        "unclaimed": dict(sorted(unclaimed.items())),
        "older_opset": old,
        "totals": totals,
        "counted": counted,
        "pass_rate": round(totals["passed"] / counted, 4) if counted else None,
    }


def markdown(r: dict[str, Any]) -> str:
    t = r["totals"]
    lines = [
        "# ONNX -> JAX conformance: the ONNX backend node tests",
        "",
        f"`python -m benchmarks.onnx_conformance`, {r['date']}, {r['seconds']} s, load "
        f"{r['load_before']} -> {r['load_after']}. Counted: opset >= 13, element types the "
        f"table computes in. Goal: >= {GOAL:.0%} passed, 0 mismatches, 0 crashes.",
        "",
        f"**{t['passed']} of {r['counted']} counted tests pass ({r['pass_rate']:.1%}); "
        f"{t['refused']} refused, {t['mismatch']} mismatches, {t['crash']} crashes**; "
        f"{t['excluded']} excluded (`benchmarks/onnx_conformance_exclusions.py`), {t['dtype']} "
        f"outside the element types, {r['older_opset']} declaring an opset older than 13.",
        "",
        "| op type | tests | passed | refused | excluded | mismatch | crash | dtype | reason |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for op, row in r["rows"].items():
        n = sum(row[k] for k in OUTCOMES)
        why = "; ".join(f"{_short(k)} ({v})" for k, v in list(row["reasons"].items())[:2])
        cells = " | ".join(str(row[k]) for k in OUTCOMES)
        lines.append(f"| {op} | {n} | {cells} | {why.replace('|', '/')} |")
    no_tests = sorted(set(r["claimed"]) - set(r["rows"]))
    lines += [
        "",
        f"Claimed op types without node tests of their own: {', '.join(no_tests) or 'none'}.",
    ]
    lines += ["", "## Op types of the suite the table does not claim (refused at build)", ""]
    lines.append(", ".join(f"{op} ({n})" for op, n in r["unclaimed"].items()))
    return "\n".join(lines) + "\n"


def _short(reason: str) -> str:
    """A refusal without the error's framing (the node and what is refused stay)."""
    return re.sub(
        r"^\d+ (node\(s\) in a use the table refuses|op type\(s\) outside the table): ", "", reason
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    results = measure()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "onnx_conformance.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "onnx_conformance.md").write_text(markdown(results))
    print(markdown(results).split("\n\n")[2])


if __name__ == "__main__":
    main()
