"""Every public name of interop imports, and interop knows nothing of specs."""

import subprocess
import sys

import pytest

import interop


def test_public_names_import() -> None:
    for name in interop.__all__:
        assert callable(getattr(interop, name)), name


@pytest.mark.slow
def test_interop_does_not_import_specs() -> None:
    code = "import sys, interop; print('specs' in sys.modules or 'adapters' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
