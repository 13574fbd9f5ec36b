"""The GPU script's logic, proven on the CPU: ``benchmarks.gpu`` in its dry-run mode.

The dry run executes every part (bridge pointers over the dtype table, stream checks, timing
sweep, ONNX bound vs round trip, ``jax_function``, adapter vs module, ``runtime="jax"`` vs
torch eager) with tiny sizes; a real
GPU run differs only in sizes and the device. The runner's isolation (a failing or hanging
part costs only itself) is tested with real failing parts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import gpu
from benchmarks.gpu import bridge, lowered, precision_rows

PARTS = list(gpu.PARTS)


@pytest.fixture(scope="module")
def dry(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("gpu-dry")
    return gpu.run_parts(out, dry=True, isolate=False), out


@pytest.mark.slow
@pytest.mark.parametrize("name", PARTS)
def test_dry_run_part_passes_every_check(dry: tuple[dict, Path], name: str) -> None:
    part = dry[0]["parts"][name]
    failed = [c for c in part["checks"] if not c["ok"]]
    assert part["status"] == "ok", (part.get("error"), failed, part.get("rows"))
    assert part["checks"], f"{name} checked nothing"


@pytest.mark.parametrize(
    ("name", "expected_rows"),
    [
        ("bridge", 3 * len(gpu.DRY.sizes)),  # torch->jax, jax->torch, torch->ort per size
        ("onnx", len(gpu.DRY.onnx_models) + len(precision_rows.LOW["onnxruntime"])),
        ("jax_function", 2),
        ("adapter", 2 + len(precision_rows.LOW["torch"])),
        (
            "lowered",
            len(gpu.DRY.lowered_models) * len(gpu.DRY.lowered_batches)
            + len(precision_rows.LOW["jax"]),
        ),
    ],
)
def test_dry_run_times_every_case(dry: tuple[dict, Path], name: str, expected_rows: int) -> None:
    rows = dry[0]["parts"][name]["rows"]
    assert len(rows) == expected_rows
    for r in rows:
        assert r["ours_s"] > 0 and r["baseline_s"] > 0
        assert r["ratio"] == pytest.approx(r["ours_s"] / r["baseline_s"])


@pytest.mark.parametrize(
    ("part", "runtime"), [("adapter", "torch"), ("lowered", "jax"), ("onnx", "onnxruntime")]
)
def test_dry_run_times_each_low_precision_against_float32(
    dry: tuple[dict, Path], part: str, runtime: str
) -> None:
    rows = [r for r in dry[0]["parts"][part]["rows"] if r["case"].endswith(" vs 32-true")]
    assert [r["ours"] for r in rows] == list(precision_rows.LOW[runtime])
    assert {r["baseline"] for r in rows} == {"32-true"} and {r["runtime"] for r in rows} == {
        runtime
    }
    label = rows[0]["case"][len(part) + 1 : -len(f" {rows[0]['ours']} vs 32-true")]
    assert [r["case"] for r in rows] == precision_rows.cases(part, runtime, label)


def test_precision_rows_bfloat16_and_float16_where_the_runtime_has_kernels() -> None:
    assert precision_rows.LOW == {
        "torch": ("bf16-true", "16-true"),
        "jax": ("bf16-true", "16-true"),
        "onnxruntime": ("16-true",),  # ONNX Runtime: float16 only
    }


def test_dry_run_covers_the_dtype_table_in_every_direction(dry: tuple[dict, Path]) -> None:
    names = {c["name"] for c in dry[0]["parts"]["bridge"]["checks"]}
    for dtype in bridge.DTYPES:
        for what in ("torch->jax copy=False", "jax->torch copy=False", "torch->ort", "jax->ort"):
            assert any(n.startswith(f"{dtype}: {what}") for n in names), (dtype, what)
    streams = [n for n in names if n.startswith("stream:")]
    assert len(streams) == 4  # torch -> jax / numpy / ort, jax -> torch


def test_report_files_round_trip(dry: tuple[dict, Path]) -> None:
    report, out = dry
    assert sorted(p.name for p in out.iterdir()) == sorted(gpu.OUTPUTS)
    assert json.loads((out / "gpu_check.json").read_text())["parts"].keys() == set(PARTS)
    md = (out / "gpu_check.md").read_text()
    for name in PARTS:
        assert f"## {name}: ok" in md
    for row in report["parts"]["bridge"]["rows"]:
        assert f"| {row['case']} |" in md


def _boom(p: gpu.Profile) -> dict:
    raise RuntimeError("CUDA error: an illegal memory access was encountered")


def _one_check(p: gpu.Profile) -> dict:
    return {"checks": [{"name": "device is " + p.device, "ok": True}], "rows": []}


def _failing_check(p: gpu.Profile) -> dict:
    return {"checks": [{"name": "pointers differ", "ok": False}], "rows": []}


def test_a_failing_part_does_not_stop_the_others(tmp_path: Path) -> None:
    parts = {"first": _boom, "second": _failing_check, "third": _one_check}
    report = gpu.run_parts(tmp_path, dry=True, parts=parts)
    statuses = {n: p["status"] for n, p in report["parts"].items()}
    assert statuses == {"first": "error", "second": "failed", "third": "ok"}
    assert "illegal memory access" in report["parts"]["first"]["error"]
    md = (tmp_path / "gpu_check.md").read_text()
    assert "| pointers differ | **NO** |" in md and "device is cpu" in md


def test_a_hanging_part_is_killed_and_reported(tmp_path: Path) -> None:
    # a real child process that cannot finish its imports in 0.3 s
    report = gpu.run_parts(tmp_path, dry=True, only=["env"], timeouts={"env": 0.3})
    part = report["parts"]["env"]
    assert part["status"] == "timeout" and "0 s" in part["error"]
    assert json.loads((tmp_path / "gpu_check.json").read_text())["parts"]["env"]["status"] == (
        "timeout"
    )


def test_the_budget_stops_later_parts(tmp_path: Path) -> None:
    report = gpu.run_parts(tmp_path, dry=True, parts={"a": _one_check}, budget_s=0.0)
    assert report["parts"]["a"]["status"] == "not run"


def test_unknown_part_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown part\(s\) \['gpu'\].*'bridge'"):
        gpu.run_parts(tmp_path, dry=True, only=["gpu"])


def test_the_full_profile_fits_the_brief() -> None:
    full = gpu.FULL
    assert full.device == "cuda" and not full.dry
    assert (min(full.sizes), max(full.sizes)) == (2**10, 2**28)  # 1 KB .. 256 MB
    assert full.batch == 16 and full.vit.name == "vit_small_patch16_224"
    assert [m.name for m in full.lowered_models] == ["vit_small_patch16_224", "resnet18"]
    assert full.lowered_batches == (1, 16)
    assert sum(gpu.TIMEOUTS.values()) <= gpu.BUDGET_S <= 300


def test_lowered_part_checks_placement_transfers_and_parity(dry: tuple[dict, Path]) -> None:
    part = dry[0]["parts"]["lowered"]
    names = [c["name"] for c in part["checks"]]
    for m in gpu.DRY.lowered_models:
        assert f"lowered {m.label}: params unmoved after the timed calls" in names
        for batch in gpu.DRY.lowered_batches:
            case = f"lowered cpu {m.label} batch {batch}"
            assert f"{case}: no host<->device transfer per jitted call" in names
            assert any(n.startswith(f"{case}: output equals torch") for n in names)
    for r in part["rows"]:
        if r["case"].endswith(" vs 32-true"):
            continue  # a precision row: one setting against another, both compiled before
        assert r["compile_s"] > 0 and r["build_s"] > 0 and r["torch_default_s"] > 0


def test_lowered_part_skips_with_the_reason_without_cuda() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the part runs instead of skipping")
    result = gpu.run_part(lowered.run, gpu.FULL)
    assert result["status"] == "skipped" and not result["checks"] and not result["rows"]
    assert "sees no GPU" in result["skipped"][0]["why"]
