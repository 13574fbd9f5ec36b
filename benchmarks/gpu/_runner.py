"""Run the GPU parts, each in its own process by default, and write JSON + markdown.

A part that raises, crashes the process (a CUDA fault poisons the whole context) or hangs
(a stream wait that never ends) costs only itself: the parent records ``error``,
``crashed`` or ``timeout`` and goes on. The report files are rewritten after every part,
so even a run killed from outside leaves the parts done so far.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.gpu._common import Profile, error_text, profile
from benchmarks.gpu._report import to_markdown

#: part name -> module with ``run(profile) -> dict``; run in this order
PARTS: dict[str, str] = {
    "env": "benchmarks.gpu.env",
    "bridge": "benchmarks.gpu.bridge",
    "onnx": "benchmarks.gpu.onnx_cuda",
    "jax_function": "benchmarks.gpu.jax_gpu",
    "adapter": "benchmarks.gpu.adapter_cuda",
    "lowered": "benchmarks.gpu.lowered",
}
#: seconds each part may take on the H200 (imports included); the sum stays under BUDGET_S.
#: ``onnx`` is a quick skip on the lent image (ONNX Runtime has no CUDA provider there, see
#: README.md); ``lowered`` builds two backbones with runtime="jax" and compiles each twice,
#: then the first at two low precisions (skipped with the reason when the time is short)
TIMEOUTS: dict[str, float] = {
    "env": 20,
    "bridge": 65,
    "onnx": 40,
    "jax_function": 50,
    "adapter": 35,
    "lowered": 90,
}
BUDGET_S = 300.0  # the whole run: 5 minutes on the lent machine, minus start-up
OUTPUTS = ("gpu_check.json", "gpu_check.md", "gpu_check.log")
#: set in every part's process: no hub, no JAX grab of 75% of the GPU next to torch
CHILD_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
    "TOKENIZERS_PARALLELISM": "false",
}

Part = Callable[[Profile], dict[str, Any]]


def _status(result: dict[str, Any]) -> str:
    if result.get("error"):
        return "error"
    checks, rows = result.get("checks", []), result.get("rows", [])
    if not all(c["ok"] for c in checks) or any("error" in r for r in rows):
        return "failed"
    if not checks and not rows and result.get("skipped"):
        return "skipped"
    return "ok"


def run_part(fn: Part, p: Profile) -> dict[str, Any]:
    """Run one part in this process; never raises (an exception becomes ``status: error``)."""
    start = time.perf_counter()
    try:
        result = dict(fn(p))
    except Exception as err:
        result = {"error": error_text(err), "traceback": traceback.format_exc()[-2000:]}
    result["seconds"] = time.perf_counter() - start
    result["status"] = _status(result)
    return result


def _load(name: str) -> Part:
    return importlib.import_module(PARTS[name]).run


def _isolated(name: str, dry: bool, timeout: float, log: list[str]) -> dict[str, Any]:
    """Run part ``name`` in a child Python; a crash or timeout is recorded, not raised."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fm-gpu-part-") as tmp:
        result_path = Path(tmp) / "result.json"
        cmd = [
            sys.executable,
            "-m",
            "benchmarks.gpu",
            "--child",
            name,
            "--result",
            str(result_path),
        ]
        if dry:
            cmd.append("--dry-run")
        root = Path(__file__).resolve().parents[2]  # the repository: `benchmarks` imports from it
        env = {**os.environ, **CHILD_ENV}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
        try:
            proc = subprocess.run(
                cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired as err:
            raw = err.stderr or b""  # bytes even with text=True (subprocess docs)
            stderr = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
            log.append(f"== {name}: timeout after {timeout:.0f} s\n{stderr[-4000:]}")
            return {
                "status": "timeout",
                "error": f"killed after {timeout:.0f} s (its share of the {BUDGET_S:.0f} s budget)",
                "seconds": time.perf_counter() - start,
            }
        log.append(f"== {name}: exit {proc.returncode}\n{proc.stderr[-4000:]}")
        if result_path.exists():
            return json.loads(result_path.read_text())
        return {
            "status": "crashed",
            "error": f"the part's process exited with {proc.returncode} and wrote no result",
            "stderr_tail": proc.stderr[-2000:],
            "seconds": time.perf_counter() - start,
        }


def write(report: dict[str, Any], out_dir: Path, log: Sequence[str] = ()) -> None:
    """``gpu_check.json``, ``gpu_check.md`` and ``gpu_check.log`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / OUTPUTS[0]).write_text(json.dumps(report, indent=2, default=str))
    (out_dir / OUTPUTS[1]).write_text(to_markdown(report))
    (out_dir / OUTPUTS[2]).write_text("\n".join(log) + "\n")


def run_parts(
    out_dir: str | os.PathLike[str],
    *,
    dry: bool,
    only: Sequence[str] | None = None,
    isolate: bool = True,
    parts: Mapping[str, Part] | None = None,
    timeouts: Mapping[str, float] | None = None,
    budget_s: float = BUDGET_S,
) -> dict[str, Any]:
    """Run the parts in order and write the report after each.

    Args:
        out_dir: where ``gpu_check.json`` / ``.md`` / ``.log`` go (created).
        dry: the CPU dry run (tiny sizes, the same logic) instead of the CUDA run.
        only: part names to run (default: all of ``PARTS``).
        isolate: each part in its own process (default); False runs them here (tests).
        parts: in-process part functions by name instead of ``PARTS`` (implies isolate=False).
        timeouts: per-part seconds for isolated runs (default ``TIMEOUTS``).
        budget_s: seconds for the whole run; a part gets at most what is left.

    Returns:
        ``{"date", "mode", "seconds", "parts": {name: {"status", "checks", "rows",
        "skipped", "notes", "seconds", ...}}}``.
    """
    names = list(only or (parts or PARTS))
    unknown = [n for n in names if n not in (parts or PARTS)]
    if unknown:
        raise ValueError(
            f"run_parts: unknown part(s) {unknown}; expected names from {list(parts or PARTS)}"
        )
    out = Path(out_dir)
    p = profile(dry)
    report: dict[str, Any] = {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": p.device + (" dry run" if dry else ""),
        "parts": {},
        "seconds": 0.0,
    }
    log: list[str] = []
    start = time.perf_counter()
    for name in names:
        left = budget_s - (time.perf_counter() - start)
        if left < 5:
            result = {"status": "not run", "error": f"the {budget_s:.0f} s budget was spent"}
        elif parts is not None or not isolate:
            result = run_part(parts[name] if parts is not None else _load(name), p)
        else:
            timeout = min((timeouts or TIMEOUTS).get(name, 60.0), left)
            result = _isolated(name, dry, timeout, log)
        report["parts"][name] = result
        report["seconds"] = time.perf_counter() - start
        write(report, out, log)
        print(f"[gpu] {name}: {result['status']} ({result.get('seconds', 0):.1f} s)", flush=True)
    return report


def child(name: str, dry: bool, result_path: str) -> None:
    """The body of an isolated part's process: run it, write its result JSON."""
    result = run_part(_load(name), profile(dry))
    Path(result_path).write_text(json.dumps(result, default=str))
