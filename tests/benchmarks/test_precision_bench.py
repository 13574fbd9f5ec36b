"""``benchmarks/precision.py``'s plan and ratios, without running the (minutes-long) rows."""

from __future__ import annotations

from benchmarks import precision


def test_plan_random_weights_at_every_setting_then_each_checkpoint_at_32_and_bf16() -> None:
    assert precision.plan(list(precision.PRECISIONS), ["safetensors", "pth"]) == [
        *[(p, "random") for p in precision.PRECISIONS],
        ("32-true", "safetensors"),
        ("bf16-true", "safetensors"),
        ("32-true", "pth"),
        ("bf16-true", "pth"),
    ]
    assert precision.plan(["bf16-true"], []) == [("bf16-true", "random")]


def test_ratios_compare_with_32_true_of_the_same_weights() -> None:
    def row(p: str, w: str, mib: float) -> dict:
        return {"precision": p, "weights": w, "build_mib": mib, "peak_mib": mib, "forward_ms": 1.0}

    rows = [row("32-true", "random", 100), row("bf16-true", "random", 95)]
    rows += [row("32-true", "safetensors", 200), row("bf16-true", "safetensors", 50)]
    rows += [{"precision": "bf16-true", "weights": "pth", "error": "x"}]
    precision.add_ratios(rows)
    assert [r.get("peak_mib_ratio") for r in rows] == [1.0, 0.95, 1.0, 0.25, None]
