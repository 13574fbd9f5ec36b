"""What the command line says while it works: the backbone it loads (size, device), a plain
progress line when stderr is not a terminal, and one line on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from adapters._src.app import cli, describe

ROOT = Path(__file__).resolve().parents[2]
TINY = {
    "source": "timm",
    "model_name": "vit_tiny_patch16_224",
    "pretrained": False,
    "model_kwargs": {"img_size": 32, "depth": 1, "num_classes": 0},
}


@pytest.fixture
def tiny_spec(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return str(path)


def test_embed_says_what_it_loads_and_prints_plain_progress(capsys, monkeypatch, tiny_spec):
    import timm

    monkeypatch.setattr(describe, "PLAIN_PROGRESS_EVERY_S", 0.0)  # a line per batch
    out = Path(tiny_spec).with_name("e.safetensors")
    argv = ["embed", tiny_spec, "--data", "digits", "--limit", "40", "--batch-size", "16"]
    code = cli.main([*argv, "--image-size", "32", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    model = timm.create_model("vit_tiny_patch16_224", **TINY["model_kwargs"])
    n = sum(p.numel() for p in model.parameters())
    lines = captured.out.splitlines()
    assert lines[0] == f"loading backbone {tiny_spec} ..."
    assert lines[1].startswith(f"backbone: {n:,} parameters (") and "on cpu (torch)" in lines[1]
    progress = [x for x in captured.err.splitlines() if x.startswith("embed: ")]
    assert [x.split(" images")[0] for x in progress] == [
        "embed: 16/40",
        "embed: 32/40",
        "embed: 40/40",
        "embed: 40/40",  # the closing line
    ]


def test_plain_progress_is_silent_when_disabled(capsys):
    progress = describe.PlainProgress(10, enabled=False)
    progress(10)
    progress.line()
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
    first = proc.stdout.readline()
    assert first.startswith("loading backbone"), first
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["interrupted: nothing written"], err
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["tiny.yaml"]


def test_a_swallowed_ctrl_c_comes_back():
    """An interrupt dropped where it landed (as in a gc callback) is raised again."""
    from adapters._src.app import interrupts

    with pytest.raises(KeyboardInterrupt), interrupts.catching_interrupts():
        try:  # the first one lands here and is swallowed, as "Exception ignored" does
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        except KeyboardInterrupt:
            pass
        time.sleep(5)  # the re-sent one interrupts this
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
