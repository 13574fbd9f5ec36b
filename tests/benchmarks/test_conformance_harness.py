"""The conformance harness itself: how a sample is wrapped, compared, arbitrated and classified."""

from __future__ import annotations

import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import torch

from benchmarks import (
    _conformance_report,
    _opinfo,
    _opinfo_gauge,
    _opinfo_random,
    conformance,
    conformance_exclusions,
)
from benchmarks._opinfo_sweep import Worker
from benchmarks.conformance_exclusions import EXCLUDED, STATISTICAL, SUPPORTS
from interop._src.lowering.ops import TABLE


@pytest.fixture(scope="module")
def entries() -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _opinfo.entries()


@torch.library.custom_op("fm_conformance_test::twice", mutates_args=())
def _twice(x: torch.Tensor) -> torch.Tensor:
    return 2 * x


@_twice.register_fake
def _(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


class _Sample:
    """A ``SampleInput``'s three fields, for a hand-made sample."""

    def __init__(self, input, *args, **kwargs):
        self.input, self.args, self.kwargs = input, args, kwargs


class _Op:
    """An OpInfo's two fields the harness reads, around a plain function."""

    def __init__(self, fn):
        self.op = fn

    def supported_dtypes(self, device):
        return {torch.float32, torch.float64, torch.bfloat16}


def _branchy(x: torch.Tensor) -> torch.Tensor:
    return x if x.sum() > 0 else -x  # data-dependent control flow: torch.export cannot capture it


def test_wrap_makes_every_tensor_an_input_and_keeps_the_rest() -> None:
    a, b = torch.randn(2, 3), torch.randn(3)
    module, tensors = _opinfo.wrap(torch.add, _Sample(a, b, alpha=2))
    assert len(tensors) == 2 and torch.equal(tensors[0], a) and tensors[0] is not a
    assert torch.equal(module(*tensors), torch.add(a, b, alpha=2))
    assert list(module.state_dict()) == []  # no tensor baked into the module


def test_a_matching_op_matches_and_a_refusal_names_the_missing_op() -> None:
    x = torch.randn(3, 4)
    assert _opinfo.run_sample(_Op(torch.tanh), _Sample(x), torch.float32)["verdict"] == "match"
    refused = _opinfo.run_sample(_Op(_twice), _Sample(x), torch.float32)
    assert refused["verdict"] == "refused"
    assert refused["missing"] == ["fm_conformance_test.twice.default"]


def test_an_export_failure_is_not_capturable_not_a_refusal() -> None:
    got = _opinfo.run_sample(_Op(_branchy), _Sample(torch.randn(3)), torch.float32)
    assert got["verdict"] == "not_capturable", got
    assert got["missing"] == []


def test_an_int64_input_that_does_not_fit_int32_is_refused_not_wrapped() -> None:
    with pytest.raises(OverflowError, match="jax_enable_x64"):
        _opinfo.to_jax(torch.tensor([2**40]))
    assert _opinfo.to_jax(torch.tensor([-5, 7])).tolist() == [-5, 7]


def test_a_nondeterministic_op_is_skipped_with_a_pointer_to_the_list() -> None:
    got = _opinfo.run_sample(_Op(torch.rand_like), _Sample(torch.randn(3)), torch.float32)
    assert got["verdict"] == "skipped" and "conformance_exclusions" in got["reason"]


def test_a_sample_exclusion_applies_in_its_dtypes_only() -> None:
    skips = conformance_exclusions.sample_skips()
    assert skips[("sort", "bfloat16")] == (0,) and ("sort", "float32") not in skips
    assert skips[("nn.functional.multi_head_attention_forward", "float32")] == (1,)  # every dtype
    for found in conformance_exclusions.EXCLUDED.values():
        assert found.category in conformance_exclusions.CATEGORIES


def test_compare_uses_the_dtype_tolerance_nans_and_exact_integers() -> None:
    want = torch.tensor([1.0, float("nan"), 100.0])
    rtol, atol = _opinfo.TOLERANCE[torch.float32]
    assert _opinfo.compare(np.array([1.0, np.nan, 100.0005], np.float32), want, rtol, atol) is None
    assert "1 of 3 values differ" in _opinfo.compare(
        np.array([1.0, np.nan, 100.01], np.float32), want, rtol, atol
    )
    assert _opinfo.compare(np.array([1, 2], np.int32), torch.tensor([1, 2]), rtol, atol) is None
    assert "differ" in _opinfo.compare(np.array([1, 3], np.int32), torch.tensor([1, 2]), 1, 1)
    assert _opinfo.compare(np.ones(3, np.float32), torch.ones(3, dtype=torch.bfloat16), 1, 1)
    rtol, atol = _opinfo.TOLERANCE[torch.bfloat16]
    bf16 = torch.tensor([100.0, 3.0], dtype=torch.bfloat16)
    near = np.array([101.0, 3.0], ml_dtypes.bfloat16)  # 1 ulp at 100: within rtol 1.6e-2
    assert _opinfo.compare(near, bf16, rtol, atol) is None
    far = np.array([104.0, 3.0], ml_dtypes.bfloat16)
    assert "max abs 4" in _opinfo.compare(far, bf16, rtol, atol)
    assert _opinfo.compare(np.ones((3, 1), np.float32), torch.ones(3), 1, 1).startswith("shape")


def test_low_precision_is_arbitrated_by_the_wide_result() -> None:
    x = torch.linspace(1, 200, 64, dtype=torch.float64)
    op = _Op(lambda t: t * 1.01)
    sample = _Sample(x.to(torch.bfloat16))
    exact = (x.to(torch.bfloat16).double() * 1.01).numpy()
    nearest = exact.astype(ml_dtypes.bfloat16)
    off = torch.from_numpy(exact * 1.05).to(torch.bfloat16)  # 5% off: beyond the tolerance
    reason = _opinfo.arbitrate(op, sample, torch.bfloat16, 0, nearest, off)
    assert reason.startswith("as near float64 as torch's bfloat16 kernel")
    worse = (exact * 0.9).astype(ml_dtypes.bfloat16)
    assert _opinfo.arbitrate(op, sample, torch.bfloat16, 0, worse, off) == ""


def test_torch_failing_to_nan_loses_the_arbitration_to_a_number() -> None:
    """matrix_exp in bfloat16: torch's kernel overflows to NaN where float64 is finite."""
    x = torch.linspace(1, 4, 8, dtype=torch.float64)
    op = _Op(lambda t: t * 3)
    ours = (x.to(torch.bfloat16).double() * 3).numpy().astype(ml_dtypes.bfloat16)
    nans = torch.full((8,), float("nan"), dtype=torch.bfloat16)
    reason = _opinfo.arbitrate(op, _Sample(x.to(torch.bfloat16)), torch.bfloat16, 0, ours, nans)
    assert reason.startswith("as near float64")


def test_outputs_defined_up_to_sign_are_compared_by_the_samples_own_map(entries) -> None:
    """An SVD whose singular vectors differ from torch's by a sign is a match: both sides go
    through OpInfo's output_process_fn_grad (|U|, U @ Vh, S), not an elementwise compare."""
    assert {"svd", "linalg.svd", "linalg.eigh", "linalg.eig"} <= set(_opinfo_gauge.GAUGE)
    sign, checked = torch.tensor([-1.0, 1.0, -1.0]), 0
    for sample in _opinfo.samples(entries["linalg.svd"], torch.float32, 48)[32:]:  # 3x3, 3x5
        raw = torch.linalg.svd(sample.input, **sample.kwargs)
        k = raw.S.shape[-1]
        if k != 3:
            continue
        u, vh = raw.U.clone(), raw.Vh.clone()
        u[..., :k] *= sign
        vh[..., :k, :] *= sign[:, None]
        flipped = [u.numpy(), raw.S.numpy(), vh.numpy()]
        assert _opinfo.compare(flipped[0], raw.U, 1e-5, 1e-3) is not None
        want, got = _opinfo_gauge.defined_part("linalg.svd", sample, raw, flipped)
        for g, w in zip(got, want, strict=True):
            assert _opinfo.compare(g, w, 1e-5, 1e-3) is None
        checked += 1
    assert checked == 16


def test_eigenpairs_in_another_order_and_phase_are_the_same_eig(entries) -> None:
    """linalg.eig's order is unspecified (LAPACK builds differ) and each eigenvector's phase
    is free: the lowering's pairs are matched to torch's eigenvalues before comparing."""
    checked = 0
    for sample in _opinfo.samples(entries["linalg.eig"], torch.float32, 20):
        raw = torch.linalg.eig(sample.input)
        n = raw.eigenvalues.shape[-1]
        if n < 2 or raw.eigenvalues.numel() == 0:
            continue
        flip = torch.arange(n - 1, -1, -1)
        phase = torch.exp(1j * torch.linspace(0.3, 2.0, n)).to(torch.complex64)
        w, v = raw.eigenvalues[..., flip], raw.eigenvectors[..., flip] * phase
        assert _opinfo.compare(w.numpy(), raw.eigenvalues, 1e-5, 1e-3) is not None
        want, got = _opinfo_gauge.defined_part("linalg.eig", sample, raw, [w.numpy(), v.numpy()])
        for g, x in zip(got, want, strict=True):
            assert _opinfo.compare(g, x, 1e-5, 1e-3) is None
        sample.output_process_fn_grad = lambda x: x  # linalg.eigvals' samples
        (x,), (g,) = _opinfo_gauge.defined_part("linalg.eigvals", sample, raw[0], [w.numpy()])
        assert _opinfo.compare(g, x, 1e-5, 1e-3) is None
        checked += 1
    assert checked >= 3


def test_arbitration_counts_equal_infinities_as_exact() -> None:
    """An output with -inf where the float64 result has -inf (entr of a negative number) is
    arbitrated on its finite values: inf - inf is no error, not NaN."""
    x = torch.tensor([-2.0, 5.09375, 1.1328125, 5.78125], dtype=torch.float64)
    op = _Op(torch.special.entr)
    sample = _Sample(x.to(torch.bfloat16))
    exact = torch.special.entr(x).numpy()
    nearest = exact.astype(ml_dtypes.bfloat16)
    off = torch.from_numpy(exact * 1.05).to(torch.bfloat16)
    reason = _opinfo.arbitrate(op, sample, torch.bfloat16, 0, nearest, off)
    assert reason.startswith("as near float64 as torch's bfloat16 kernel")


def test_an_entry_takes_its_worst_sample_and_every_missing_op() -> None:
    got = _opinfo.combine([
        {"verdict": "match", "reason": ""},
        {"verdict": "refused", "reason": "r", "missing": ["aten.b"]},
        {"verdict": "not_capturable", "reason": "n", "missing": []},
        {"verdict": "refused", "reason": "r2", "missing": ["aten.a", "aten.b"]},
    ])  # fmt: skip
    assert (got["verdict"], got["missing"]) == ("refused", ["aten.a", "aten.b"])
    assert got["samples"] == ["match", "refused", "not_capturable", "refused"]
    crash = [{"verdict": "match", "reason": ""}, {"verdict": "crash", "reason": "c"}]
    assert _opinfo.combine(crash)["verdict"] == "crash"
    assert _opinfo.combine([])["verdict"] == "skipped"


def test_ranking_counts_entries_needing_each_op_and_those_it_unlocks_alone() -> None:
    rows = [
        {"entry": "a", "dtype": "float32", "verdict": "refused", "reason": "", "missing": ["x"]},
        {"entry": "a", "dtype": "bfloat16", "verdict": "refused", "reason": "", "missing": ["x"]},
        {
            "entry": "b",
            "dtype": "float32",
            "verdict": "refused",
            "reason": "",
            "missing": ["x", "y"],
        },
        {"entry": "c", "dtype": "float16", "verdict": "refused", "reason": "", "missing": ["y"]},
        {"entry": "d", "dtype": "float32", "verdict": "match", "reason": "", "missing": []},
    ]
    ranked = {m["op"]: m for m in _conformance_report.missing_ranking(rows)}
    assert (ranked["x"]["entries"], ranked["x"]["alone"], ranked["x"]["float32"]) == (2, 1, 2)
    assert (ranked["y"]["entries"], ranked["y"]["alone"], ranked["y"]["float32"]) == (2, 1, 1)
    counts = _conformance_report.summary(rows)["float32"]
    assert (counts["match"], counts["refused"], counts["capturable"]) == (1, 2, 3)


def _row(entry: str, verdict: str = "match") -> dict:
    return {"entry": entry, "dtype": "float32", "verdict": verdict, "reason": "", "missing": []}


def test_a_sweep_for_some_entries_keeps_the_other_rows_and_resume_skips_done_ones() -> None:
    rows = [_row("a"), _row("b"), _row("c", "refused")]
    kept, redo = conformance.plan(rows, [("b", "float32"), ("d", "float32")], resume=False)
    assert [r["entry"] for r in kept] == ["a", "c"] and redo == [("b", "float32"), ("d", "float32")]
    kept, redo = conformance.plan(rows, [("b", "float32"), ("d", "float32")], resume=True)
    assert [r["entry"] for r in kept] == ["a", "b", "c"] and redo == [("d", "float32")]


def test_results_are_written_as_json_and_its_markdown(tmp_path: Path) -> None:
    results = {"rows": [_row("b", "refused"), _row("a")], "runs": []}
    results["rows"][0]["missing"] = ["aten.sort.default"]
    conformance.write(results, tmp_path)
    assert [r["entry"] for r in conformance.read(tmp_path)["rows"]] == ["a", "b"]
    lines = (tmp_path / "conformance.json").read_text().splitlines()
    assert [line for line in lines if '"entry": ' in line] == [
        '  {"entry": "a", "dtype": "float32", "verdict": "match", "reason": "", "missing": []},',
        '  {"entry": "b", "dtype": "float32", "verdict": "refused", "reason": "", "missing": '
        '["aten.sort.default"]}',
    ]  # one row per line: rows measured on two branches merge
    text = (tmp_path / "conformance.md").read_text()
    assert "| `aten.sort.default` | 1 | 1 | 1 | b |" in text
    assert "| float32 | 2 | 2 | 1 | 50.0 |" in text


@pytest.mark.slow
def test_the_worker_runs_samples_and_is_killed_past_the_time_budget() -> None:
    worker = Worker(n=1, timeout=120.0, only_samples={})
    try:
        assert [r["verdict"] for r in worker.run("abs", "float32")] == ["match"]
        worker.timeout = 0.001
        got = list(worker.run("nn.functional.conv2d", "float32"))
    finally:
        worker.close()
    assert [r["verdict"] for r in got] == ["timeout"] and worker.proc is None


#: a sample of each random entry the tests use: a (5, 5) input; dropout's has p = 0.5
_SAMPLE = {"randn_like": 1, "exponential": 1, "nn.functional.dropout": 2}


def _sample(entries: dict, key: str, dtype: torch.dtype = torch.float32):
    return entries[key], _opinfo.samples(entries[key], dtype, 3)[_SAMPLE[key]]


@pytest.mark.parametrize(
    ("key", "dtype"),
    [
        ("randn_like", torch.float32),
        ("exponential", torch.bfloat16),
        ("nn.functional.dropout", torch.float16),
    ],
)
def test_a_random_entry_is_compared_by_distribution(entries: dict, key: str, dtype) -> None:
    """A sampler, an in-place one (compared in its functional form) and a random layer."""
    op, sample = _sample(entries, key, dtype)
    got = _opinfo.run_sample(op, sample, dtype)
    assert got["verdict"] == "match" and got["reason"].startswith("statistical:"), got


def _shifted(x, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None, key):
    return jax.random.normal(key, x.shape) + 0.2


def _wider(x, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None, key):
    return 1.3 * jax.random.normal(key, x.shape)


def _unscaled(x, p, train, *, key):
    mask = jax.random.bernoulli(key, 1 - p, x.shape)
    return jnp.where(mask, x, 0), mask  # forgets the 1 / (1 - p)


@pytest.mark.parametrize(
    ("key", "op_name", "wrong", "why"),
    [
        ("randn_like", "aten.randn_like.default", _shifted, "mean"),
        ("randn_like", "aten.randn_like.default", _wider, "mean square"),
        ("nn.functional.dropout", "aten.native_dropout.default", _unscaled, "support (seen)"),
    ],
)
def test_a_wrong_sampler_is_a_mismatch(entries, monkeypatch, key, op_name, wrong, why) -> None:
    monkeypatch.setitem(TABLE, op_name, wrong)
    op, sample = _sample(entries, key)
    got = _opinfo.run_sample(op, sample, torch.float32)
    assert got["verdict"] == "mismatch" and why in got["reason"], got


def test_the_robust_tests_tell_a_shifted_cauchy_apart() -> None:
    """Cauchy has no moments: the median and spread tests see what the mean cannot."""
    rng = np.random.default_rng(0)
    torch_draws = rng.standard_cauchy((512, 16))
    assert _opinfo_random.distribution(rng.standard_cauchy((512, 16)), torch_draws) == ""
    shifted = _opinfo_random.distribution(rng.standard_cauchy((512, 16)) + 0.3, torch_draws)
    assert "median" in shifted
    wider = _opinfo_random.distribution(2 * rng.standard_cauchy((512, 16)), torch_draws)
    assert "spread" in wider
    nonfinite = rng.standard_normal((512, 4))
    nonfinite[::2, 0] = np.inf
    assert "non-finite" in _opinfo_random.distribution(nonfinite, rng.standard_normal((512, 4)))


def test_the_random_entries_are_listed_once_with_a_known_support(entries: dict) -> None:
    assert set(_opinfo_random.SUPPORT) == set(SUPPORTS)
    assert {s.support for s in STATISTICAL.values()} <= set(SUPPORTS)
    assert set(STATISTICAL) <= set(entries) and not set(STATISTICAL) & set(EXCLUDED)
