"""``runtime="auto"`` (``adapters/_src/runtimes/auto/``): the fastest runtime that passes its
first-build check, chosen once and cached; the choice read back in a new process without
timing again; a copied or edited choice entry is a named miss; a runtime that fails its
export or its check is never chosen; a pinned runtime wins.

Every case builds real models (a tiny ``torch.nn.Conv2d``, exported to ONNX and lowered to
JAX) and compares the chosen runtime's output with torch's."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import adapters
import specs
from adapters._src.runtimes import auto
from adapters._src.runtimes.auto.choose import candidates
from adapters._src.runtimes.cache_entry import CACHE_ENV, CacheWarning

#: exports and lowers real models (seconds each): out of the fast lane (-m 'not slow')
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
SPEC = specs.ModuleSpec(
    class_path="torch.nn.Conv2d",
    init_args={"in_channels": 3, "out_channels": 4, "kernel_size": 3},
)
EXAMPLE = torch.zeros(1, 3, 8, 8)
X = torch.linspace(-1, 1, 2 * 3 * 8 * 8).reshape(2, 3, 8, 8)


class Eigenvalues(torch.nn.Module):
    """A model ONNX cannot express: the exporter has no function for ``aten._linalg_eigh``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(2)
        return torch.linalg.eigvalsh(flat @ flat.transpose(1, 2))


class ExportsDifferently(torch.nn.Module):
    """A model whose export differs from its eager forward (it adds 1 while being exported):
    every runtime but torch fails its first-build check against torch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1 if torch.compiler.is_exporting() else x


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def _build(seed: int = 0) -> adapters.Adapter:
    return adapters.build(SPEC, runtime="auto", example_input=EXAMPLE, seed=seed)


def _torch_output(seed: int = 0) -> np.ndarray:
    with torch.no_grad():
        return adapters.build(SPEC, seed=seed)(X).numpy()


def _entry(served: adapters.Adapter) -> Path:
    return Path(served.info["auto"]["choice_path"]).parent


def test_auto_keeps_the_fastest_verified_runtime_and_caches_the_choice(cache: Path) -> None:
    served = _build()
    record = served.info["auto"]
    assert record["cache"] == "miss"
    assert served.info["runtime"] == record["runtime"] in candidates()
    assert sorted(record["timings"]) == sorted(candidates()), record  # every one built and ran
    assert not record["skipped"]
    medians = {k: v["median_s"] for k, v in record["timings"].items()}
    fastest = min(medians, key=medians.get)
    assert record["runtime"] in (fastest, "torch")  # torch keeps near-ties (5%)
    assert record["batch_size"] == auto.DEFAULT_BATCH and len(record["load"]) == 2
    np.testing.assert_allclose(np.asarray(served(X)), _torch_output(), atol=1e-5, rtol=1e-5)
    if record["runtime"] != "torch":
        assert served.info["parity"]  # the chosen runtime's own first-build check ran
        assert record["speedup"] >= 1.05
    assert re.fullmatch(rf"{record['runtime']}, .+, measured at build", auto.summary(served.info))
    assert json.loads((_entry(served) / "choice.json").read_text())["runtime"] == record["runtime"]


NEW_PROCESS = textwrap.dedent(
    """
    import json
    import torch
    import adapters, specs

    spec = specs.ModuleSpec(
        class_path="torch.nn.Conv2d",
        init_args={"in_channels": 3, "out_channels": 4, "kernel_size": 3},
    )
    served = adapters.build(spec, runtime="auto", example_input=torch.zeros(1, 3, 8, 8))
    x = torch.linspace(-1, 1, 2 * 3 * 8 * 8).reshape(2, 3, 8, 8)
    out = served(x)
    print(json.dumps({"auto": served.info["auto"], "y": torch.as_tensor(out).tolist()}))
    """
)


def test_a_new_process_reads_the_choice_without_timing_again(cache: Path) -> None:
    first = _build().info["auto"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), CACHE_ENV: str(cache)}
    proc = subprocess.run(
        [sys.executable, "-c", NEW_PROCESS], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    again = found["auto"]
    assert again["cache"] == "hit"
    # the record measured by the first build, not a new timing (its calls, its time stamp)
    for field in ("runtime", "timings", "measured", "load", "skipped"):
        assert again[field] == first[field], field
    np.testing.assert_allclose(np.asarray(found["y"]), _torch_output(), atol=1e-5, rtol=1e-5)
    assert auto.summary({"auto": again}).endswith("(cached choice)")


def test_another_input_signature_or_timing_batch_is_measured_again(cache: Path) -> None:
    first = _build()
    again = _build()
    assert again.info["auto"]["cache"] == "hit" and _entry(again) == _entry(first)
    wider = adapters.build(SPEC, runtime="auto", example_input=torch.zeros(1, 3, 10, 10))
    smaller = auto.convert(adapters.build(SPEC), EXAMPLE, batch_size=4)
    assert wider.info["auto"]["cache"] == smaller.info["auto"]["cache"] == "miss"
    assert len({_entry(first), _entry(wider), _entry(smaller)}) == 3
    assert smaller.info["auto"]["batch_size"] == 4


def test_a_copied_choice_entry_is_a_named_miss(cache: Path) -> None:
    mine, other = _build(seed=0), _build(seed=1)
    entry = _entry(mine)
    assert entry != _entry(other)
    shutil.rmtree(entry)
    shutil.copytree(_entry(other), entry)
    with pytest.warns(CacheWarning, match=re.escape(repr(str(entry)))) as caught:
        again = _build(seed=0)
    assert "key" in str(caught[0].message)
    assert again.info["auto"]["cache"] == "miss"  # measured again, for these weights
    np.testing.assert_allclose(np.asarray(again(X)), _torch_output(0), atol=1e-5, rtol=1e-5)
    assert _build(seed=0).info["auto"]["cache"] == "hit"  # rebuilt: intact again


def test_an_edited_choice_is_a_named_miss(cache: Path) -> None:
    entry = _entry(_build())
    choice = entry / "choice.json"
    record = json.loads(choice.read_text())
    choice.write_text(json.dumps({**record, "runtime": "onnxruntime", "speedup": 99.0}))
    with pytest.warns(CacheWarning, match=r"choice\.json does not match the sha256"):
        again = _build()
    assert again.info["auto"]["cache"] == "miss" and again.info["auto"]["speedup"] != 99.0


def test_a_resealed_choice_with_bad_timings_is_a_named_miss(cache: Path) -> None:
    """An entry whose record was edited and whose meta.json was resealed to match: its key
    still holds, but a record the printed line cannot read is refused, not trusted."""
    entry = _entry(_build())
    choice = entry / "choice.json"
    record = json.loads(choice.read_text())
    choice.write_text(json.dumps({**record, "timings": {"torch": {"median_s": "fast"}}}))
    meta = json.loads((entry / "meta.json").read_text())
    meta["files"]["choice.json"] = hashlib.sha256(choice.read_bytes()).hexdigest()
    (entry / "meta.json").write_text(json.dumps(meta))
    with pytest.warns(CacheWarning, match=r"choice\.json's timings are not"):
        again = _build()
    assert again.info["auto"]["cache"] == "miss"
    assert isinstance(again.info["auto"]["timings"]["torch"]["median_s"], float)


@pytest.mark.parametrize(
    ("model", "runtime", "why"),
    [
        (Eigenvalues, "onnxruntime", r"^BuildError: export: .*_linalg_eigh"),
        (ExportsDifferently, "onnxruntime", r"^ParityError: "),
        (ExportsDifferently, "jax", r"^ParityError: "),
    ],
    ids=["export-fails", "onnx-check-fails", "jax-check-fails"],
)
def test_a_runtime_that_fails_its_build_or_check_is_never_chosen(
    cache: Path, model: type, runtime: str, why: str
) -> None:
    spec = specs.ModuleSpec(class_path=f"{__name__}.{model.__name__}")
    served = adapters.build(spec, runtime="auto", example_input=EXAMPLE)
    record = served.info["auto"]
    assert re.search(why, record["skipped"][runtime]), record["skipped"]
    assert served.info["runtime"] != runtime and runtime not in record["timings"]
    assert served.info["runtime"] not in record["skipped"]
    with torch.no_grad():
        expected = adapters.build(spec)(X).numpy()
    np.testing.assert_allclose(np.asarray(served(X)), expected, atol=1e-5, rtol=1e-5)
    if model is ExportsDifferently:
        assert served.info["runtime"] == "torch"  # the only runtime that agrees with torch
        assert auto.summary(served.info).startswith("torch, the only runtime verified")


def test_a_pinned_runtime_wins_and_builds_default_to_torch(cache: Path) -> None:
    assert adapters.build(SPEC).framework == "torch"  # build's own default: torch, explicit
    served = adapters.build(SPEC, runtime="onnxruntime", example_input=EXAMPLE)
    assert served.info["runtime"] == "onnxruntime" and "auto" not in served.info
    assert not (cache / "auto").exists()  # nothing measured, nothing chosen


def test_auto_options_are_checked(cache: Path) -> None:
    module = adapters.build(SPEC)
    with pytest.raises(TypeError, match=r"runtime='auto' takes the options .*\['atol'\]"):
        auto.convert(module, EXAMPLE, atol=1.0)
    with pytest.raises(adapters.BuildError, match=r"^batch_size: "):
        auto.convert(module, EXAMPLE, batch_size=0)


def test_a_backbone_of_another_framework_is_served_as_built(cache: Path, tmp_path: Path) -> None:
    onnx_spec = adapters.export_onnx(adapters.build(SPEC), tmp_path / "m.onnx", EXAMPLE)
    served = adapters.build(onnx_spec, runtime="auto")
    assert served.framework == "onnx" and served.info["auto"]["runtime"] == "onnx"
    assert not (cache / "auto").exists()
