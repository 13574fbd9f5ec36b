"""The benchmark runner: rows written as they are measured, skips, --save, load recorded.

The suites here are tiny real modules written to a temporary directory (no timing asserted).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from benchmarks import __main__ as runner
from benchmarks import _results

ROW = (
    "ratio_row('{case}', {{'a': {{'median_s': 2.0, 'spread': 0.1}}, "
    "'b': {{'median_s': 1.0, 'spread': 0.2}}}}, 'a', 'b', note='{case}')"
)


def _suite(where: Path, name: str, body: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Write a suite module ``name`` whose ``run`` executes ``body``; returns its name."""
    code = "from benchmarks._timing import Skip, ratio_row\n\n\ndef run(quick):\n"
    (where / f"{name}.py").write_text(code + textwrap.indent(textwrap.dedent(body), "    "))
    monkeypatch.syspath_prepend(str(where))
    return name


def _read(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def test_rows_reach_the_files_before_the_suite_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = f"""
        yield {ROW.format(case="first")}
        raise KeyboardInterrupt  # the run is stopped after one row
    """
    name = _suite(tmp_path, "fmbench_stopped", body, monkeypatch)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        runner.run_suites({"stopped": name}, out, quick=True, command="cmd")
    record = _read(out)["suites"]["stopped"]
    assert record["status"] == "running"
    assert [row["case"] for row in record["rows"]] == ["first"]
    assert record["rows"][0]["ratio"] == 2.0
    assert record["command"] == "cmd"
    assert len(record["load_before"]) == 3
    assert all(isinstance(x, float) for x in record["load_before"])
    text = (out / "results.md").read_text()
    assert "Incomplete" in text
    assert "| first | a | b |" in text
    assert "Load before: " in text


def test_finished_suite_records_load_after_and_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = f"""
        yield {ROW.format(case="one")}
        yield {ROW.format(case="two")}
    """
    name = _suite(tmp_path, "fmbench_done", body, monkeypatch)
    statuses = runner.run_suites({"done": name}, tmp_path, quick=False)
    record = _read(tmp_path)["suites"]["done"]
    assert statuses == {"done": "done"}
    assert record["status"] == "done"
    assert record["quick"] is False
    assert [row["note"] for row in record["rows"]] == ["one", "two"]
    assert len(record["load_after"]) == 3
    assert record["machine"]["cpu_count"] >= 1


def test_skip_is_one_line_and_error_does_not_stop_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    skip = _suite(tmp_path, "fmbench_skip", "raise Skip('needs the bench extra')", monkeypatch)
    fail = _suite(tmp_path, "fmbench_fail", "raise ValueError('broken')\nyield", monkeypatch)
    good = _suite(tmp_path, "fmbench_good", f"yield {ROW.format(case='ok')}", monkeypatch)
    statuses = runner.run_suites({"skip": skip, "fail": fail, "good": good}, tmp_path, quick=True)
    assert statuses == {"skip": "skipped", "fail": "error", "good": "done"}
    err = capsys.readouterr()
    assert "skipped: needs the bench extra" in err.out
    assert err.err.count("Traceback") == 1  # the failing suite's, not the skipped one's
    suites = _read(tmp_path)["suites"]
    assert suites["skip"]["reason"] == "needs the bench extra"
    assert suites["fail"]["error"] == "ValueError: broken"
    text = (tmp_path / "results.md").read_text()
    assert "Skipped: needs the bench extra" in text
    assert "Failed: ValueError: broken" in text


def test_vs_eva_without_the_bench_extra_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # kaiko-eva made unimportable, as without the bench extra (a None entry blocks the import)
    for name in [m for m in sys.modules if m == "eva" or m.startswith("eva.")] + ["eva"]:
        monkeypatch.setitem(sys.modules, name, None)
    statuses = runner.run_suites({"vs_eva": "benchmarks.vs_eva"}, tmp_path, quick=True)
    assert statuses == {"vs_eva": "skipped"}
    captured = capsys.readouterr()
    assert "pip install -e '.[bench]'" in captured.out
    assert "Traceback" not in captured.err


def test_a_later_run_replaces_only_its_own_suites(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _suite(tmp_path, "fmbench_a", f"yield {ROW.format(case='a1')}", monkeypatch)
    b = _suite(tmp_path, "fmbench_b", f"yield {ROW.format(case='b1')}", monkeypatch)
    runner.run_suites({"a": a, "b": b}, tmp_path, quick=True)
    first_b = _read(tmp_path)["suites"]["b"]
    (tmp_path / "fmbench_a2.py").write_text(
        (tmp_path / "fmbench_a.py").read_text().replace("a1", "a2")
    )
    runner.run_suites({"a": "fmbench_a2"}, tmp_path, quick=True)
    suites = _read(tmp_path)["suites"]
    assert [row["case"] for row in suites["a"]["rows"]] == ["a2"]
    assert suites["b"] == first_b


def test_skipped_suite_keeps_its_earlier_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran = _suite(tmp_path, "fmbench_ran", f"yield {ROW.format(case='kept')}", monkeypatch)
    runner.run_suites({"eva": ran}, tmp_path, quick=True)
    earlier = _read(tmp_path)["suites"]["eva"]
    skip = _suite(tmp_path, "fmbench_now_skips", "raise Skip('extra missing')", monkeypatch)
    assert runner.run_suites({"eva": skip}, tmp_path, quick=True) == {"eva": "skipped"}
    assert _read(tmp_path)["suites"]["eva"] == earlier


def test_a_suite_that_takes_out_is_given_the_results_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``runtimes`` writes files of its own (runtimes.json, .md) where the run writes."""
    code = (
        "from benchmarks._timing import ratio_row\n\n\ndef run(quick, out):\n"
        "    (out / 'own.txt').write_text(str(quick))\n"
        f"    yield {ROW.format(case='own')}\n"
    )
    (tmp_path / "fmbench_own.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "out"
    assert runner.run_suites({"own": "fmbench_own"}, out, quick=True) == {"own": "done"}
    assert (out / "own.txt").read_text() == "True"
    assert runner.SUITES["runtimes"] == "benchmarks.runtimes"


def test_default_output_is_git_ignored_and_save_is_the_committed_dir(tmp_path: Path) -> None:
    assert runner.output_dir(save=False, out=None) == runner.LOCAL
    assert runner.output_dir(save=True, out=None) == runner.RESULTS
    assert runner.output_dir(save=True, out=str(tmp_path)) == tmp_path
    assert runner.LOCAL.parent == runner.RESULTS
    root = runner.RESULTS.parent.parent
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    probe = runner.LOCAL / "results.json"
    ignored = subprocess.run(["git", "check-ignore", "-q", str(probe)], cwd=root, check=False)
    tracked = subprocess.run(
        ["git", "check-ignore", "-q", str(runner.RESULTS / "results.json")], cwd=root, check=False
    )
    assert (ignored.returncode, tracked.returncode) == (0, 1)


def test_single_run_files_of_format_1_are_read(tmp_path: Path) -> None:
    old = {
        "date": "2026-11-29",
        "quick": True,
        "machine": {"cpu_count": 2},
        "suites": {"x": {"rows": [], "seconds": 1.0}, "y": {"error": "ImportError: eva"}},
    }
    (tmp_path / "results.json").write_text(json.dumps(old))
    suites = _results.read(tmp_path / "results.json")["suites"]
    assert suites["x"]["status"] == "done"
    assert suites["x"]["date"] == "2026-11-29"
    assert suites["x"]["load_before"] is None
    assert suites["y"]["status"] == "error"
    assert "not recorded" in _results.to_markdown({"suites": suites})
