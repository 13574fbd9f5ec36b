"""What the command line says while it works: the backbone it loads (size, device), a plain
progress line when stderr is not a terminal, and one line on Ctrl-C."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from adapters._src.app import cli
from adapters._src.app.progress import Progress

ROOT = Path(__file__).resolve().parents[3]
TINY = {
    "source": "timm",
    "model_name": "vit_tiny_patch16_224",
    "pretrained": False,
    "model_kwargs": {"img_size": 32, "depth": 1, "num_classes": 0},
}


REPORT_FILES = ("report.json", "learning_curve.png", "confusion_matrix.png", "embedding_map.png")


@pytest.fixture
def tiny_spec(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return str(path)


def test_embed_says_what_it_loads_and_prints_plain_progress(capsys, monkeypatch, tiny_spec):
    import timm

    monkeypatch.setattr("adapters._src.app.progress.PLAIN_PROGRESS_EVERY_S", 0.0)  # each batch
    out = Path(tiny_spec).with_name("e.safetensors")
    argv = ["embed", tiny_spec, "--data", "digits", "--limit", "40", "--batch-size", "16"]
    code = cli.main([*argv, "--image-size", "32", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    model = timm.create_model("vit_tiny_patch16_224", **TINY["model_kwargs"])
    n = sum(p.numel() for p in model.parameters())
    lines = captured.out.splitlines()
    assert lines[0] == f"embed {tiny_spec} on digits -> {out}"
    assert lines[1] == f"loading backbone {tiny_spec} ..."
    assert lines[2].startswith(f"backbone: {n:,} parameters (") and "on cpu (torch)" in lines[2]
    progress = [x for x in captured.err.splitlines() if x.startswith("embed: ")]
    assert [x.split(" images")[0] for x in progress] == [
        "embed: 16/40",
        "embed: 32/40",
        "embed: 40/40",
        "embed: 40/40",  # the closing line
    ]


def test_plain_progress_is_silent_when_disabled(capsys):
    progress = Progress(10, enabled=False)
    progress.update(10)
    progress.close()
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_ctrl_c_prints_one_line_and_exits_130(tmp_path, tiny_spec):
    out = tmp_path / "e.safetensors"
    argv = ["embed", tiny_spec, "--data", "digits", "--batch-size", "1", "--image-size", "32"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapters", *argv, "--out", str(out), "--device", "cpu"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("loading backbone"):
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["interrupted: nothing written"], err
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["tiny.yaml"]


def _drop_in_del() -> None:
    class Dropping:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # interrupted here, inside __del__: Python drops the exception

    Dropping()


def _drop_in_gc_callback() -> None:
    fired = []

    def callback(phase: str, info: dict) -> None:
        if phase == "start" and not fired:
            fired.append(True)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # interrupted here, inside a gc callback (as JAX registers one)

    gc.callbacks.append(callback)
    try:
        gc.collect()
    finally:
        gc.callbacks.remove(callback)


@pytest.mark.parametrize("drop", [_drop_in_del, _drop_in_gc_callback], ids=["del", "gc"])
def test_a_ctrl_c_python_drops_comes_back_without_noise(drop):
    from adapters._src.app import interrupts

    previous_hook = sys.unraisablehook
    unraisable = []
    sys.unraisablehook = unraisable.append  # what Python would print as 'Exception ignored'
    try:
        with pytest.raises(KeyboardInterrupt), interrupts.catching_interrupts():
            drop()
            time.sleep(5)  # the interrupt, raised again, lands here
    finally:
        sys.unraisablehook, hook = previous_hook, sys.unraisablehook
    assert unraisable == [] and hook == unraisable.append  # nothing printed; the hook restored
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_does_not_cut_the_cleanup_of_the_first():
    from adapters._src.app import interrupts

    cleaned = []
    with pytest.raises(KeyboardInterrupt), interrupts.catching_interrupts():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        finally:
            os.kill(os.getpid(), signal.SIGINT)  # pressed again while the first unwinds
            time.sleep(0.2)
            cleaned.append(True)
    assert cleaned == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.slow
@pytest.mark.parametrize("after", ["loading backbone", "embedded", "split"])
def test_ctrl_c_twice_during_probe_exits_130_with_one_line(tmp_path, tiny_spec, after):
    """Real SIGINTs to a probe, twice 50 ms apart as an impatient user sends them: while the
    backbone loads, while the head trains and while the report is written. Before, probe died
    from SIGINT or SIGSEGV after its 'interrupted' line, printed a traceback, or left a
    half-written report directory."""
    argv = ["probe", tiny_spec, "--limit", "300", "--image-size", "32", "--epochs", "300"]
    for run in range(2):
        report = tmp_path / f"report{run}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "adapters", *argv, "--report", str(report)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONFAULTHANDLER": "1"},
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(after):
                break
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)
        if proc.returncode == 0:  # it finished first: the report is whole
            assert {p.name for p in report.iterdir()} == set(REPORT_FILES)
            continue
        assert proc.returncode == 130, err
        assert err.strip().splitlines()[-1:] == ["interrupted: nothing written"], err
        assert "Traceback" not in err
        assert not report.exists()
