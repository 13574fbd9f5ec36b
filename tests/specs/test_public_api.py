"""The public names of `specs`, and that importing it pulls in no framework."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import specs


@pytest.mark.parametrize("name", specs.__all__)
def test_public_name_imports(name: str) -> None:
    module = importlib.import_module("specs")
    assert getattr(module, name) is not None


def test_all_is_sorted_and_complete() -> None:
    assert specs.__all__ == sorted(specs.__all__, key=lambda n: (not n.isupper(), n))
    public = {n for n in dir(specs) if not n.startswith("_")}
    assert set(specs.__all__) <= public
    # specs.internal: the helpers other packages of this project may use, by name, not public API
    assert public - set(specs.__all__) <= {"annotations", "internal"}


def test_import_specs_does_not_import_frameworks() -> None:
    code = (
        "import sys, specs\n"
        "spec = specs.loads('{source: timm, model_name: m}')\n"
        "heavy = [m for m in ('torch', 'jax', 'onnxruntime', 'transformers', 'timm', 'flax')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
