"""``python -m benchmarks.gpu``: see the package docstring and ``README.md`` beside this."""

from __future__ import annotations

import argparse
import os
import sys

from benchmarks.gpu._runner import PARTS, child, run_parts


def main(argv: list[str] | None = None) -> int:
    """Run the parts; exit 0 when every part ran and every check passed, else 1."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__)
    parser.add_argument(
        "--out",
        default=os.environ.get("OUT") or os.path.join("benchmarks", "results", "gpu"),
        help="output folder (default: $OUT, else benchmarks/results/gpu)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="the same logic on the CPU at tiny sizes"
    )
    parser.add_argument("--only", nargs="+", choices=list(PARTS), help="run these parts only")
    parser.add_argument(
        "--in-process", action="store_true", help="run the parts here, not one process each"
    )
    parser.add_argument("--child", choices=list(PARTS), help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        if not args.result:
            parser.error("--child needs --result FILE")
        child(args.child, args.dry_run, args.result)
        return 0
    report = run_parts(args.out, dry=args.dry_run, only=args.only, isolate=not args.in_process)
    print(f"[gpu] report: {os.path.join(args.out, 'gpu_check.md')}")
    return 0 if all(p["status"] in ("ok", "skipped") for p in report["parts"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
