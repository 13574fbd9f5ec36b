"""The ``runtimes`` suite: one architecture's rows (every runtime timed against torch eager,
a refusal as a row, a spent cap as rows), its table files, and its process ended at the cap.

The architectures are a tiny timm ViT at 32 px built with random weights (no timing asserted).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

import specs
from benchmarks import _results, runtimes
from benchmarks._runtimes_cases import Case

pytestmark = pytest.mark.filterwarnings(r"ignore:os\.fork\(\) was called:RuntimeWarning")


def tiny(precision: str = "32-true") -> Case:
    spec = specs.TimmSpec(
        model_name="vit_tiny_patch16_224",
        pretrained=False,
        model_kwargs={"img_size": 32, "depth": 1, "num_classes": 0},
        precision=precision,
    )
    return Case("tiny", "tiny ViT", ("universal/tiny",), 0.1, lambda _tmp: spec, size=32)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FM_ADAPTERS_CACHE", str(tmp_path / "cache"))


@pytest.mark.slow  # three runtimes built and timed
def test_rows_time_every_runtime_against_torch_and_fill_the_table(tmp_path: Path) -> None:
    deadline = time.monotonic() + 600
    rows = list(runtimes.case_rows(tiny(), [2], repeats=2, deadline=deadline, tmp=tmp_path))
    assert [r["runtime"] for r in rows] == ["jax", "onnxruntime", "auto"]
    for r in rows:
        assert r["status"] == "timed", r.get("note")
        assert r["baseline"] == "torch" and r["ours"] == r["runtime"] and r["batch"] == 2
        assert r["ours_s"] > 0 and r["baseline_s"] > 0 and r["rounds"] == 2
        assert r["ratio"] == pytest.approx(r["ours_s"] / r["baseline_s"])
        assert r["speedup"] == pytest.approx(1 / r["ratio"])
        assert len(r["loadavg"]) == 3 and r["cpu"] == _results.cpu_model()
        assert set(r["build_s"]) == {"torch", "jax", "onnxruntime", "auto"}
        assert r["params_m"] > 0 and r["entries"] == ["universal/tiny"]
        assert r["peak_rss_gib"] > 0
    assert len({r["baseline_s"] for r in rows}) == 1  # one interleaved timing
    auto = rows[-1]
    assert auto["chosen"] in ("torch", "jax", "onnxruntime") and auto["auto_timed_batch"] == 16
    assert "chosen" not in rows[0]
    meta = {"date": "d", "quick": True, "cap_s": 1, "repeats": 2, "cpu": "c", "machine": {}}
    runtimes.write(tmp_path / "out", meta, rows)
    back = json.loads((tmp_path / "out" / "runtimes.json").read_text())
    assert back["rows"] == json.loads(json.dumps(rows))
    (line,) = [x for x in (tmp_path / "out" / "runtimes.md").read_text().splitlines()
               if x.startswith("| tiny ViT")]  # fmt: skip
    assert f"| {auto['chosen']}: " in line and line.count("x) |") == 3


@pytest.mark.slow  # two runtimes built and timed
def test_a_runtime_that_refuses_gets_a_row_with_its_error(tmp_path: Path) -> None:
    """ONNX Runtime refuses bfloat16 weights in its build: its row says so, the others are
    timed, and auto skipped it."""
    deadline = time.monotonic() + 600
    rows = runtimes.case_rows(tiny("bf16-true"), [1], repeats=2, deadline=deadline, tmp=tmp_path)
    by = {r["runtime"]: r for r in rows}
    ort = by["onnxruntime"]
    assert ort["status"] == "refused" and ort["note"].startswith("refused: BuildError: ")
    assert "precision" in ort["note"] and "\n" not in ort["note"]
    assert math.isnan(ort["ours_s"]) and math.isnan(ort["ratio"]) and ort["baseline_s"] > 0
    assert by["auto"]["status"] == "timed" and "onnxruntime" in by["auto"]["auto_skipped"]


def test_a_spent_cap_skips_the_rows_and_says_so(tmp_path: Path) -> None:
    rows = list(runtimes.case_rows(tiny(), [1, 16], repeats=2, deadline=0.0, tmp=tmp_path))
    assert [(r["batch"], r["runtime"]) for r in rows] == [
        (b, n) for b in (1, 16) for n in ("jax", "onnxruntime", "auto")
    ]
    for r in rows:
        assert r["status"] == "skipped for time" and "spent on its builds" in r["note"]


def test_the_process_of_an_architecture_is_ended_at_its_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtimes, "GRACE_S", 0.0)
    c = runtimes.case("vit_tiny")
    t0 = time.monotonic()
    rows = list(runtimes.case_in_process(c, [1], repeats=1, cap_s=0.5))
    assert time.monotonic() - t0 < 30  # ended, not waited for
    assert [r["runtime"] for r in rows] == ["jax", "onnxruntime", "auto"]
    for r in rows:
        assert r["status"] == "skipped for time" and "cap of 0.5 s" in r["note"]
        assert r["label"] == "ViT-tiny/16" and math.isnan(r["ours_s"])


def test_an_architecture_too_large_for_the_memory_is_skipped_with_the_figures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    giant = runtimes.case("vit_g14_gigapath")
    why = runtimes.short_of_memory(giant, available_gib=20.0)
    assert why is not None and why.startswith("skipped for memory: about ")
    assert "GiB needed" in why and "20 GiB available" in why
    assert runtimes.short_of_memory(giant, available_gib=1e4) is None
    monkeypatch.setattr(runtimes, "_available_gib", lambda: 0.5)
    rows = list(runtimes._case(runtimes.case("vit_tiny"), [1, 16], repeats=1, cap=10.0))
    assert len(rows) == 6
    assert {r["status"] for r in rows} == {"skipped for memory"}
