"""Results files of the benchmark runner: ``results.json``, ``results.md`` and the bridge plot.

``results.json`` holds one record per suite, each with its own date, mode, command, machine
and load averages, so that a run of some suites (``--only``) replaces those suites' records
and keeps the others. A record's ``status`` is ``running`` until the suite ends (a run that
was killed leaves ``running`` and the rows it had measured), then ``done``, ``skipped`` or
``error``. Files are replaced atomically, so a reader never sees half a file.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

FORMAT = 2
_FIXED = ("case", "ours", "baseline", "ours_s", "baseline_s", "ratio", "spread")


def machine() -> dict[str, Any]:
    """What the figures were measured on: Python, platform, cores and library versions."""
    import torch

    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    for name in ("jax", "onnxruntime", "timm", "transformers"):
        try:
            info[name] = importlib.import_module(name).__version__
        except ImportError:  # a missing optional backend is reported, not fatal
            info[name] = None
    return info


def cpu_model() -> str:
    """``lscpu``'s model name, the CPU the figures were measured on (``/proc/cpuinfo``'s when
    lscpu is missing), or ``"unknown"``."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        out = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    for line in out.splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def read(path: Path) -> dict[str, Any]:
    """The results in ``path`` (format 2; an older single-run file is converted), or empty."""
    if not path.exists():
        return {"format": FORMAT, "suites": {}}
    data = json.loads(path.read_text())
    if data.get("format") == FORMAT:
        return data
    # format 1: one run, its date / mode / machine at the top, no load recorded
    common = {"date": data.get("date"), "quick": data.get("quick"), "machine": data.get("machine")}
    suites = {}
    for name, payload in data.get("suites", {}).items():
        status = "error" if "error" in payload else "done"
        suites[name] = {"status": status, **common, "load_before": None, **payload}
    return {"format": FORMAT, "suites": suites}


def write(results: dict[str, Any], out: Path) -> None:
    """Write ``results.json`` and ``results.md`` into ``out`` (each replaced atomically)."""
    out.mkdir(parents=True, exist_ok=True)
    _replace(out / "results.json", json.dumps(results, indent=2, default=str) + "\n")
    _replace(out / "results.md", to_markdown(results))


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _load(value: list[float] | None) -> str:
    return "not recorded" if not value else " / ".join(f"{x:.2f}" for x in value)


def to_markdown(results: dict[str, Any]) -> str:
    """A section per suite: when, how and under what load it ran, then its table."""
    lines = [
        "# Benchmark results",
        "",
        "ratio = ours / baseline (time per call; below 1 is faster). spread = (max-min)/median"
        " over repeats. Load: the 1 / 5 / 15 minute load averages (`os.getloadavg()`) before"
        " and after the suite; above the core count, the figures are from a busy machine.",
    ]
    for name, record in results["suites"].items():
        lines += ["", f"## {name}", ""]
        m = record.get("machine") or {}
        lines.append(
            f"{record.get('date')}, {'quick' if record.get('quick') else 'full'} mode"
            + (f", `{record['command']}`" if record.get("command") else "")
            + f". Load before: {_load(record.get('load_before'))}; after:"
            f" {_load(record.get('load_after'))} ({m.get('cpu_count')} cores)."
        )
        lines.append(
            f"Machine: {m.get('platform')}, torch {m.get('torch')} ({m.get('torch_threads')}"
            f" threads), jax {m.get('jax')}, onnxruntime {m.get('onnxruntime')},"
            f" CUDA: {m.get('cuda') or 'none'}."
        )
        lines.append("")
        status = record.get("status")
        if status == "skipped":
            lines.append(f"Skipped: {record.get('reason')}")
            continue
        if status == "error":
            lines.append(f"Failed: {record.get('error')}")
        if status == "running":
            lines.append("Incomplete: the run stopped before this suite ended; its rows so far:")
            lines.append("")
        lines += _table(record.get("rows", []))
        if "seconds" in record:
            lines.append(f"\n({record['seconds']:.0f} s)")
    return "\n".join(lines) + "\n"


def _table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    extra = sorted({k for r in rows for k in r} - set(_FIXED))
    head = ["case", "ours", "baseline", "ours ms", "baseline ms", "ratio", "spread", *extra]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [
            str(r["case"]),
            str(r["ours"]),
            str(r["baseline"]),
            f"{r['ours_s'] * 1e3:.4g}",
            f"{r['baseline_s'] * 1e3:.4g}",
            f"{r['ratio']:.3g}",
            f"{r['spread']:.0%}",
            *(_fmt(r.get(k, "")) for k in extra),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def plot_bridge(rows: list[dict[str, Any]], path: Path) -> None:
    """Log-log plot of conversion time against array size, one line per direction and mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        if "nbytes" not in r:
            continue
        direction = r.get("direction", r["case"])
        for who, seconds in ((r["ours"], r["ours_s"]), (r["baseline"], r["baseline_s"])):
            series.setdefault(f"{direction} ({who})", []).append((r["nbytes"], seconds))
    if not series:
        return
    fig, ax = plt.subplots(figsize=(8, 5))
    for label, pts in sorted(series.items()):
        pts.sort()
        ax.loglog([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
    ax.set_xlabel("array size (bytes)")
    ax.set_ylabel("seconds per conversion")
    ax.set_title("interop bridge: conversion time vs size")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
