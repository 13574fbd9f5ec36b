"""The GPU report as markdown: one section per part (status, checks, timing rows, skips)."""

from __future__ import annotations

from typing import Any


def _cell(value: Any) -> str:
    text = f"{value:.3g}" if isinstance(value, float) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _details(check: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_cell(v)}" for k, v in check.items() if k not in ("name", "ok"))


def _rows(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| case | ours | baseline | ours ms | baseline ms | ratio | spread |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {_cell(r['case'])} | error: {_cell(r['error'])} | | | | | |")
            continue
        lines.append(
            f"| {_cell(r['case'])} | {r['ours']} | {r['baseline']} | {r['ours_s'] * 1e3:.4g} | "
            f"{r['baseline_s'] * 1e3:.4g} | {r['ratio']:.3g} | {r['spread']:.2f} |"
        )
    return lines


def to_markdown(report: dict[str, Any]) -> str:
    """The report dict of ``benchmarks.gpu._runner.run_parts`` as a markdown page."""
    machine = report.get("parts", {}).get("env", {}).get("machine", {})
    lines = [f"# GPU check ({report['date']}, {report['mode']})", ""]
    if machine:
        lines.append(
            "Machine: "
            + ", ".join(
                f"{k} {machine[k]}"
                for k in ("gpu", "torch", "torch_cuda", "jax", "onnxruntime", "python")
                if machine.get(k) is not None
            )
            + "."
        )
        lines.append("")
    total = sum(len(part.get("checks", [])) for part in report["parts"].values())
    failed = [
        f"{name}: {c['name']}"
        for name, part in report["parts"].items()
        for c in part.get("checks", [])
        if not c["ok"]
    ]
    lines.append(
        f"Checks: {total - len(failed)}/{total} passed in {report['seconds']:.0f} s. "
        "ratio = ours / baseline (time per call; below 1 is faster)."
    )
    for name, part in report["parts"].items():
        lines += ["", f"## {name}: {part['status']} ({part.get('seconds', 0):.1f} s)", ""]
        if part.get("error"):
            lines += [f"Error: {_cell(part['error'])}", ""]
        for s in part.get("skipped", []):
            lines.append(f"- skipped {s['what']}: {_cell(s['why'])}")
        for note in part.get("notes", []):
            lines.append(f"- note: {_cell(note)}")
        if part.get("checks"):
            lines += ["", "| check | ok | details |", "|---|---|---|"]
            for c in part["checks"]:
                mark = "yes" if c["ok"] else "**NO**"
                lines.append(f"| {_cell(c['name'])} | {mark} | {_details(c)} |")
        if part.get("rows"):
            lines += ["", *_rows(part["rows"])]
    return "\n".join(lines) + "\n"
