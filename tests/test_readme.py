"""The README's Python and YAML examples run as written (so the README cannot drift)."""

from __future__ import annotations

import re
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
