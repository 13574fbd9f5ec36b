"""The lowering against torch's OpInfo suite: the committed table is guarded, and consistent.

``benchmarks/results/conformance.json`` records, per ``op_db`` entry x dtype, each sample's
verdict from the full sweep (``python -m benchmarks.conformance``: every entry, float32 /
bfloat16 / float16, 2 samples each; benchmarks/README.md says how long it takes). CI cannot
afford that, so the guard runs, on each entry's first sample only:

- half of the float32 entries recorded as ``match`` (the regressions that matter most): the
  half picked by a hash of the entry and the commit, so two commits in a row cover them all
  in expectation and every merge checks a fresh half;
- a slice of 1 in ``SLICES`` of every other recorded row (bfloat16 and float16 matches,
  refusals, crashes, mismatches, in every dtype), picked by a hash of the entry, the dtype and
  the current git commit: deterministic for a commit, a different slice for the next one.
  ``FM_CONFORMANCE_SLICE=k`` picks slice ``k`` by hand (to reproduce a failure).

``FM_CONFORMANCE=all`` runs every recorded row with all its samples (the full sweep's
coverage, in-process, without its per-sample time limit). A test fails when a sample recorded
as ``match`` no longer matches, and when any sample crashes or mismatches that was not
recorded so; a recorded crash or mismatch that persists is an xfail (issue 22 lists them), one
that is gone passes: regenerate the table to bank it. Rows recorded as ``timeout`` are not run.
Only the full sweep covers samples after the first, and the rows outside this commit's slice.
"""

from __future__ import annotations

import json
import os
import subprocess
import warnings
import zlib
from pathlib import Path

import jax
import pytest

from benchmarks import _conformance_report, _opinfo
from benchmarks.conformance_exclusions import CATEGORIES, EXCLUDED, lookup, sample_skips

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
TABLE = json.loads((RESULTS / "conformance.json").read_text())
ROWS = {(r["entry"], r["dtype"]): r for r in TABLE["rows"]}
SLICES = 32
#: the float32 matches are checked in 1 of this many slices per commit (suite time)
F32_SLICES = 2
FULL = os.environ.get("FM_CONFORMANCE") == "all"


def _slice() -> int:
    chosen = os.environ.get("FM_CONFORMANCE_SLICE")
    if chosen is not None:
        return int(chosen) % SLICES
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: slice 0
        return 0
    return zlib.crc32(head.encode()) % SLICES


SLICE = _slice()


def _guarded(row: dict) -> bool:
    if row["verdict"] in ("excluded", "timeout", "skipped") or not row.get("samples"):
        return False
    if FULL:
        return True
    picked = zlib.crc32(f"{row['entry']}|{row['dtype']}".encode())
    if row["dtype"] == "float32" and row["verdict"] == "match":
        return picked % F32_SLICES == SLICE % F32_SLICES
    return picked % SLICES == SLICE


GUARDED = [key for key, row in ROWS.items() if _guarded(row)]


@pytest.fixture(scope="module")
def entries() -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _opinfo.entries()


def judge(recorded: list[str], now: list[str]) -> list[str]:
    """Each sample whose verdict now is a regression from the recorded one."""
    problems = []
    for i, (was, got) in enumerate(zip(recorded, now, strict=False)):
        if was == "match" and got != "match":
            problems.append(f"sample {i}: recorded match, now {got}")
        elif got in ("crash", "mismatch") and got != was:
            problems.append(f"sample {i}: recorded {was}, now {got}")
    return problems


@pytest.mark.parametrize(("entry", "dtype"), GUARDED, ids=[f"{e}-{d}" for e, d in GUARDED])
def test_entry_keeps_its_recorded_verdict(entries: dict, entry: str, dtype: str) -> None:
    row = ROWS[(entry, dtype)]
    recorded = row["samples"] if FULL else row["samples"][:1]
    op = entries[entry]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        picked = _opinfo.samples(op, _opinfo.DTYPES[dtype], len(recorded))
    skip = sample_skips().get((entry, dtype), ())
    results = list(_opinfo.run_samples(op, picked, dtype, skip))
    jax.clear_caches()
    now = [r["verdict"] for r in results]
    problems = judge(recorded, now)
    reasons = "; ".join(f"sample {i}: {r['reason']}" for i, r in enumerate(results) if r["reason"])
    assert not problems, (
        f"{entry} in {dtype} regressed (slice {SLICE}): {problems}. {reasons}. Reproduce: "
        f"python -m benchmarks.conformance --only '{entry}' --dtypes {dtype} --out /tmp/c"
    )
    if any(v in ("crash", "mismatch") for v in now):
        pytest.xfail(f"recorded {row['verdict']} persists: {reasons}")


def test_judge_flags_regressions_and_new_crashes_only() -> None:
    assert judge(["match", "refused"], ["match", "match"]) == []
    assert judge(["crash"], ["crash"]) == []
    assert judge(["match"], ["refused"]) == ["sample 0: recorded match, now refused"]
    assert judge(["refused"], ["crash"]) == ["sample 0: recorded refused, now crash"]
    assert judge(["refused"], ["mismatch"]) == ["sample 0: recorded refused, now mismatch"]


def test_the_float32_slices_cover_every_match_and_this_commit_guards_its_own() -> None:
    f32 = [k for k, r in ROWS.items() if r["dtype"] == "float32" and r["verdict"] == "match"]
    slices = [
        {k for k in f32 if zlib.crc32(f"{k[0]}|{k[1]}".encode()) % F32_SLICES == i}
        for i in range(F32_SLICES)
    ]
    assert f32 and set().union(*slices) == set(f32)
    assert min(map(len, slices)) > len(f32) / (2 * F32_SLICES)  # no slice nearly empty
    assert slices[SLICE % F32_SLICES] <= set(GUARDED)


def test_every_exclusion_names_a_category_a_reason_and_a_real_entry(entries: dict) -> None:
    for key, ex in EXCLUDED.items():
        assert key in entries, f"{key}: not an op_db entry key"
        assert ex.category in CATEGORIES, (
            f"{key}: category {ex.category!r} not in {list(CATEGORIES)}"
        )
        assert len(ex.reason.split()) >= 3, f"{key}: give a reason a reviewer can check"
        assert ex.dtypes is None or set(ex.dtypes) <= set(_opinfo.DTYPES), key
        assert ex.samples is None or all(isinstance(i, int) and i >= 0 for i in ex.samples), key


def test_committed_table_agrees_with_the_exclusion_list() -> None:
    for (entry, dtype), row in ROWS.items():
        ex = lookup(entry, dtype)
        whole = ex is not None and ex.samples is None
        assert (row["verdict"] == "excluded") == whole, (
            f"{entry} {dtype}: recorded {row['verdict']}, the exclusion list says "
            f"{'excluded' if whole else 'compared'}; regenerate the table"
        )
        assert "differs from itself" not in row["reason"], (
            f"{entry} {dtype} is nondeterministic in torch: add it to conformance_exclusions.py"
        )


def test_committed_table_covers_every_entry_and_dtype(entries: dict) -> None:
    want = {(key, d) for key, op in entries.items() for d in _opinfo.cpu_dtypes(op)}
    assert set(ROWS) == want, (
        f"the table lacks {sorted(want - set(ROWS))[:5]} and has extra {sorted(set(ROWS) - want)[:5]}"
        "; regenerate it: python -m benchmarks.conformance (or --only the new entries)"
    )


def test_committed_markdown_is_generated_from_the_json() -> None:
    text = (RESULTS / "conformance.md").read_text()
    assert text == _conformance_report.markdown(TABLE)
