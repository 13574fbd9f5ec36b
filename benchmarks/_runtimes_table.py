"""The files of the ``runtimes`` suite: ``runtimes.json`` (its header and rows) and
``runtimes.md`` (the rows as one table, an architecture and batch per line, a column per
runtime), each replaced whole after every row."""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from pathlib import Path
from typing import Any

from benchmarks import _results
from benchmarks._runtimes_cases import SIZE
from benchmarks._timing import load_average


def header(quick: bool, cap_s: float, repeats: int) -> dict[str, Any]:
    """What the run was and what it ran on: date, mode, cap, rounds, CPU model, machine, load."""
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "cap_s": cap_s,
        "repeats": repeats,
        "cpu": _results.cpu_model(),
        "machine": _results.machine(),
        "load_before": load_average(),
    }


def write(out: Path, meta: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """``runtimes.json`` and ``runtimes.md`` in ``out``, each replaced whole."""
    out.mkdir(parents=True, exist_ok=True)
    for name, text in (
        ("runtimes.json", json.dumps({"meta": meta, "rows": rows}, indent=1, default=str) + "\n"),
        ("runtimes.md", to_markdown(meta, rows)),
    ):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, out / name)


#: the runtimes timed against torch eager, in the table's order
RUNTIMES = ("jax", "onnxruntime", "auto")


def to_markdown(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The table, its definitions, and the notes of the rows without a time."""
    m = meta.get("machine") or {}
    lines = [
        f"# Runtimes: torch eager, JAX, ONNX Runtime and auto ({meta.get('date')})",
        "",
        f"{'quick' if meta.get('quick') else 'full'} mode. Time per call, float32, random "
        f"weights and input, batch x 3 x {SIZE} x {SIZE}; median of up to {meta.get('repeats')} "
        "rounds in which the four adapters are called in turn, in one process per "
        "architecture, after one untimed call each. `(1.20x)` = torch eager's time / the "
        "runtime's (above 1: faster than torch). Every adapter is built with "
        "`adapters.build(spec, runtime=...)` into an empty cache (real first builds). `auto` "
        'is `runtime="auto"` as a program builds it: its choice (named) was timed at batch '
        "16, build's default, and serves batch 1 too. Load: the 1 / 5 / 15 minute load "
        f"averages when the row was measured ({m.get('cpu_count')} cores).",
        "",
        f"CPU: {meta.get('cpu')}. {m.get('platform')}, torch {m.get('torch')} "
        f"({m.get('torch_threads')} threads), jax {m.get('jax')}, onnxruntime "
        f"{m.get('onnxruntime')}, timm {m.get('timm')}, transformers {m.get('transformers')}. "
        f"Time cap per architecture: {meta.get('cap_s', 0):.0f} s.",
        "",
        *_subset(meta),
        *_busy(meta, rows),
        "| architecture | params (M) | batch | torch ms | jax | onnxruntime | auto | build s "
        "(torch / jax / ort / auto) | peak RSS GiB | load |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    notes: list[str] = []
    for (_, batch), group in _groups(rows).items():
        first = next(iter(group.values()))
        torch_s = next((r["baseline_s"] for r in group.values() if _num(r["baseline_s"])), None)
        builds = first.get("build_s") or {}
        cells = [
            _label(first),
            f"{first.get('params_m', '')}",
            str(batch),
            f"{torch_s * 1e3:.4g}" if torch_s else "",
            *(_cell(group.get(name), notes) for name in RUNTIMES),
            " / ".join(
                f"{builds[k]:.0f}" if k in builds else "-"
                for k in ("torch", "jax", "onnxruntime", "auto")
            ),
            f"{first['peak_rss_gib']:.1f}" if _num(first.get("peak_rss_gib")) else "",
            "/".join(f"{v:.1f}" for v in first.get("loadavg", ())),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if notes:
        lines += ["", "Rows without a time:", ""] + [f"- {n}" for n in dict.fromkeys(notes)]
    return "\n".join(lines) + "\n"


def _subset(meta: dict[str, Any]) -> list[str]:
    """What a run limited by ``$FM_BENCH_RUNTIMES_CASES`` measured, and the run's own note."""
    lines = []
    if meta.get("subset"):
        lines.append(f"Only the cases {', '.join(meta['subset'])} ($FM_BENCH_RUNTIMES_CASES).")
    if meta.get("note"):
        lines.append(str(meta["note"]))
    return [" ".join(lines), ""] if lines else []


def _busy(meta: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """A warning when a row was measured with more runnable threads than cores: torch eager
    suffers most (its thread pool meets at a barrier after every op)."""
    cores = (meta.get("machine") or {}).get("cpu_count") or 0
    top = max((r["loadavg"][0] for r in rows if r.get("loadavg")), default=0.0)
    if not cores or top <= cores:
        return []
    return [
        f"**Measured on a busy machine** (1-minute load up to {top:.1f} on {cores} cores): "
        "torch eager's figures are inflated most (its threads wait for each other after every "
        "op), so the ratios overstate the other runtimes' lead; quote a run on a quiet "
        "machine.",
        "",
    ]


def _groups(rows: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, dict[str, Any]]]:
    out: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    for r in rows:
        out.setdefault((r.get("label", r["case"]), r.get("batch", 0)), {})[r["ours"]] = r
    return out


def _label(row: dict[str, Any]) -> str:
    entries = row.get("entries") or []
    names = ", ".join(e.split("/")[-1] for e in entries)
    return f"{row.get('label')}" + (f" ({names})" if names else "")


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not math.isnan(x)


def _cell(row: dict[str, Any] | None, notes: list[str]) -> str:
    if row is None:
        return ""
    if not _num(row.get("ours_s")):
        notes.append(f"{row['case']}: {row.get('note', '')}".replace("|", "\\|"))
        return f"*{row.get('status', 'no time')}*"
    speed = f"{row['ours_s'] * 1e3:.4g} ms ({row['speedup']:.2f}x)"
    if row["ours"] == "auto" and row.get("chosen"):
        return f"{row['chosen']}: {speed}"
    return speed
