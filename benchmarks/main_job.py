"""The README's first command, timed: ``python -m adapters probe`` on its embedded default.

``python -m benchmarks.main_job [--out benchmarks/results/main_job.json]``. Runs the command in a
fresh process (so imports and the backbone build count), with ``--report`` into a temporary
folder, and records wall time, the child's CPU time, the load average before and after, and
the test metrics of the head and of the pixel baseline from its ``report.json``. The README
quotes this file; re-run it when the default job changes.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from specs._src.atomic import atomic_write

OUT = Path("benchmarks/results/main_job.json")


def run_main_job() -> dict:
    """One run of the default job; its figures and its output."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "adapters", "probe", "--report", tmp]
        load_before = os.getloadavg()
        date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise SystemExit(f"the main job failed (exit {proc.returncode}):\n{proc.stderr}")
        report = json.loads((Path(tmp) / "report.json").read_text())
    return {
        "command": "python -m adapters probe --report DIR",
        "date": date,
        "exit": proc.returncode,
        "wall_s": wall,
        "cpu_user_s": usage.ru_utime,
        "cpu_sys_s": usage.ru_stime,
        "load_before": list(load_before),
        "load_after": list(os.getloadavg()),
        "cpu_count": os.cpu_count(),
        "metrics": report["metrics"],
        "baseline": report["baseline"],
        "seconds_embed": report["seconds_embed"],
        "seconds_total": report["seconds_total"],
        "stdout": proc.stdout,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.main_job")
    parser.add_argument("--out", type=Path, default=OUT, help=f"result file (default: {OUT})")
    args = parser.parse_args(argv)
    result = run_main_job()
    with atomic_write(args.out) as tmp:
        tmp.write_text(json.dumps(result, indent=1))
    print(result["stdout"])
    print(
        f"wall {result['wall_s']:.1f} s, CPU {result['cpu_user_s'] + result['cpu_sys_s']:.1f} s, "
        f"load {result['load_before'][0]:.2f} -> {result['load_after'][0]:.2f}; wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
