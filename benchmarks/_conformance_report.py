"""``conformance.md`` from ``conformance.json``: the summary per dtype, the missing-op ranking,
the crash / mismatch lists and one row per entry x dtype."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from benchmarks._opinfo import CAPTURABLE, DTYPES, ORDER

_VERDICTS = ORDER


def summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per dtype: the count of each verdict, ``capturable``, ``arbitrated``, ``statistical``
    and ``percent``.

    ``percent`` is the share of the capturable entries (``_opinfo.CAPTURABLE``) that match;
    ``statistical``: the matches compared by distribution (random entries, ``_opinfo_random``).
    """
    out = {}
    for dtype in DTYPES:
        mine = [r for r in rows if r["dtype"] == dtype]
        counts = Counter(r["verdict"] for r in mine)
        capturable = sum(counts[v] for v in CAPTURABLE)
        out[dtype] = {
            **{v: counts[v] for v in _VERDICTS},
            "entries": len(mine),
            "capturable": capturable,
            "arbitrated": sum(
                r["verdict"] == "match" and bool(r["reason"]) and not _statistical(r) for r in mine
            ),
            "statistical": sum(r["verdict"] == "match" and _statistical(r) for r in mine),
            "percent": round(100 * counts["match"] / capturable, 1) if capturable else None,
        }
    return out


def _statistical(row: dict[str, Any]) -> bool:
    return row["reason"].startswith("statistical:")


def missing_ranking(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each missing op with the entries refused for it, most needed first.

    ``entries``: distinct entries refused in some dtype with the op among their missing ones;
    ``alone``: those where it is the only missing op (adding it alone unlocks them);
    ``float32``: the float32 rows among ``entries``.
    """
    needed: dict[str, set] = defaultdict(set)
    alone: dict[str, set] = defaultdict(set)
    f32: dict[str, set] = defaultdict(set)
    for r in rows:
        if r["verdict"] != "refused":
            continue
        for op in r.get("missing", ()):
            needed[op].add(r["entry"])
            if r["dtype"] == "float32":
                f32[op].add(r["entry"])
            if len(r["missing"]) == 1:
                alone[op].add(r["entry"])
    ranked = sorted(needed, key=lambda op: (-len(needed[op]), -len(alone[op]), op))
    return [
        {"op": op, "entries": len(needed[op]), "alone": len(alone[op]), "float32": len(f32[op]),
         "examples": sorted(needed[op])[:4]}
        for op in ranked
    ]  # fmt: skip


def summary_lines(results: dict[str, Any]) -> list[str]:
    """One line per dtype: matches of capturable and the other verdicts' counts."""
    lines = []
    for dtype, s in summary(results["rows"]).items():
        if not s["entries"]:
            continue
        rest = ", ".join(f"{v} {s[v]}" for v in _VERDICTS if v != "match" and s[v])
        lines.append(
            f"{dtype}: {s['match']} of {s['capturable']} capturable entries match "
            f"({s['percent']}%; {s['arbitrated']} by float64 arbitration, {s['statistical']} "
            f"by distribution); {rest}"
        )
    return lines


def _runs(results: dict[str, Any]) -> list[str]:
    m = results.get("machine", {})
    lines = [
        f"Measured on {m.get('cpu_model')} ({m.get('cpu_count')} cores), torch {m.get('torch')}, "
        f"jax {m.get('jax')}, Python {m.get('python')}; {results.get('samples')} samples per "
        f"entry and dtype, {results.get('timeout_s')} s per sample at most.",
        "",
        "| run | started (UTC) | finished | load before | load after |",
        "|---|---|---|---|---|",
    ]
    for run in results.get("runs", []):
        loads = [" / ".join(f"{x:.2f}" for x in run[k]) if run.get(k) else "-"
                 for k in ("load_before", "load_after")]  # fmt: skip
        lines.append(f"| `{run['command']}` | {run['started']} | {run.get('finished') or 'stopped'} "
                     f"| {loads[0]} | {loads[1]} |")  # fmt: skip
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(results: dict[str, Any]) -> str:
    rows = results["rows"]
    s = summary(rows)
    lines = ["# Lowering conformance: torch's OpInfo samples through `interop.lower`", ""]
    lines += [*_runs(results), "", "## Summary", ""]
    lines += ["| dtype | entries | capturable | match | % of capturable | arbitrated | "
              + " | ".join(v for v in _VERDICTS if v != "match") + " |"]  # fmt: skip
    lines += ["|---" * (5 + len(_VERDICTS)) + "|"]
    for dtype, c in s.items():
        rest = " | ".join(str(c[v]) for v in _VERDICTS if v != "match")
        lines.append(f"| {dtype} | {c['entries']} | {c['capturable']} | {c['match']} | "
                     f"{c['percent']} | {c['arbitrated']} | {rest} |")  # fmt: skip
    lines += [
        "",
        "`capturable`: the entries torch.export can capture (match, mismatch, refused, crash, "
        "timeout); `arbitrated`: matches where the lowering differs from torch's low-precision "
        "kernel but is at least as near the float64 result (random entries match by "
        "distribution instead: `statistical` in their reason). Regenerate with "
        "`python -m benchmarks.conformance`; `benchmarks/README.md` says what each verdict means.",
        "",
        "## Missing ATen ops, most needed first",
        "",
        "`entries`: entries refused (in some dtype) with the op missing; `alone`: those where it is "
        "the only missing op; `float32`: the float32 rows among them.",
        "",
        "| op | entries | alone | float32 | e.g. |",
        "|---|---|---|---|---|",
    ]
    for m in missing_ranking(rows):
        lines.append(f"| `{m['op']}` | {m['entries']} | {m['alone']} | {m['float32']} | "
                     f"{', '.join(m['examples'])} |")  # fmt: skip
    for verdict in ("crash", "mismatch", "timeout"):
        hit = [r for r in rows if r["verdict"] == verdict]
        lines += ["", f"## {verdict} ({len(hit)})", ""]
        lines += [f"- `{r['entry']}` {r['dtype']}: {_cell(r['reason'])}" for r in hit] or ["none"]
    lines += [
        "",
        "## Every entry x dtype",
        "",
        "| entry | dtype | verdict | reason |",
        "|---|---|---|---|",
    ]
    for r in rows:
        why = (
            ", ".join(r["missing"])
            if r["verdict"] == "refused" and r.get("missing")
            else r["reason"]
        )
        lines.append(f"| `{r['entry']}` | {r['dtype']} | {r['verdict']} | {_cell(why)[:200]} |")
    return "\n".join(lines) + "\n"
