"""benchmarks.lowering: a part run alone keeps the other parts' rows; the attention case runs."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import lowering


def _row(case: str, ratio: float) -> dict:
    return {"case": case, "ours": "lowered", "baseline": "torch", "ours_s": ratio, "baseline_s": 1.0,
            "ratio": ratio, "spread": 0.0, "loadavg": [0.5, 0.5, 0.5]}  # fmt: skip


def test_a_part_run_alone_replaces_only_its_own_cases(tmp_path: Path) -> None:
    lowering._write([_row("a", 1.0), _row("b", 2.0)], quick=True, out=tmp_path)
    lowering._write([_row("b", 3.0)], quick=True, out=tmp_path)
    rows = json.loads((tmp_path / "lowering_speed.json").read_text())["rows"]
    assert [(r["case"], r["ratio"]) for r in rows] == [("a", 1.0), ("b", 3.0)]
    assert "| b | lowered | torch |" in (tmp_path / "lowering_speed.md").read_text()


def test_attention_case_times_every_block_size_against_torch() -> None:
    rows = lowering._attention_case("attention tiny", (1, 4, 16, 8), quick=True)
    names = [r["ours"] for r in rows]
    forms = ["table", "dense", "one-exp, all slices"] + [f"blocked {m} MiB" for m in (1, 4, 16, 64)]
    assert names == forms
    assert all(r["baseline"] == "torch" and r["ratio"] > 0 for r in rows)
