"""The README's Python and YAML examples run as written (so the README cannot drift)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import adapters
import specs

README = (Path(__file__).parent.parent / "README.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, flags=re.S)
PYTHON = [code for lang, code in BLOCKS if lang == "python"]


def test_readme_has_the_two_commands() -> None:
    bash = "\n".join(code for lang, code in BLOCKS if lang == "bash")
    assert "pip install -e . && python -m adapters probe" in bash
    assert 'pip install -e ".[test]" && python -m pytest -q' in bash


@pytest.mark.slow
@pytest.mark.parametrize(
    "code", [c for c in PYTHON if not c.startswith("# mylib.py")], ids=lambda c: c.split("\n")[0]
)
def test_python_examples_run(code: str) -> None:
    exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})


def test_custom_loader_example(tmp_path, monkeypatch) -> None:
    (module,) = [c for c in PYTHON if c.startswith("# mylib.py")]
    (yaml_text,) = [c for lang, c in BLOCKS if lang == "yaml" and "source: custom" in c]
    (tmp_path / "mylib.py").write_text(module)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "mylib", raising=False)
    backbone = adapters.build(specs.loads(yaml_text))
    x = torch.randn(5, 4)
    raw = x @ backbone.params["w"] + backbone.params["b"]
    torch.testing.assert_close(backbone(x), raw / raw.norm(dim=-1, keepdim=True))


@pytest.mark.slow
def test_native_jax_example_prints_the_same_loss_in_every_process(tmp_path) -> None:
    """Its backbone has random weights: seeded (spec ``seed``, default 0), two runs print one
    loss, and the second process reads the first one's JAX cache entry."""
    (code,) = [c for c in PYTHON if 'runtime="jax"' in c and "train_step" in c]
    code += '\nprint("cache", backbone.info["cache"])\n'
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "FM_ADAPTERS_CACHE": str(tmp_path / "cache")}
    outs = []
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=500,
        )
        assert proc.returncode == 0, proc.stderr
        outs.append(proc.stdout.split("\n"))
    (loss1, cache1, _), (loss2, cache2, _) = outs
    assert loss1.startswith("loss ") and loss1 == loss2
    assert (cache1, cache2) == ("cache miss", "cache hit")
