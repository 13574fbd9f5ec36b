"""A folder named ``specs/`` or ``interop/`` where Python looks first (the working directory,
the script's folder) is one clear ``ImportError`` naming it and the fix
(``adapters/_src/shadowing.py``).

The subprocesses find this checkout the way ``pip install -e .`` makes Python find it: through
a finder that Python asks after it has searched ``sys.path`` (installed here by a
``sitecustomize``), and not through ``PYTHONPATH``, which would put the checkout on
``sys.path`` where its packages win over a bare folder and hide the bug.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

EDITABLE_FINDER = f"""
import sys
from importlib.machinery import PathFinder
from importlib.util import spec_from_file_location

ROOT = {str(ROOT)!r}
PACKAGES = ("adapters", "specs", "interop")


class Editable:  # as setuptools' __editable__ finder: asked after the sys.path search
    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname in PACKAGES:
            return spec_from_file_location(fullname, f"{{ROOT}}/{{fullname}}/__init__.py")
        parent = fullname.rpartition(".")[0]
        if parent in PACKAGES:
            return PathFinder.find_spec(fullname, path=[f"{{ROOT}}/{{parent}}"])
        return None


# before the real editable install's finder, if any (it may point at another checkout)
sys.meta_path.insert(sys.meta_path.index(PathFinder) + 1, Editable)
"""


@pytest.fixture
def python(tmp_path):
    """``python(*args, cwd=...)``: a subprocess that finds this checkout as an editable
    install does; returns (exit status, stdout, stderr)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(EDITABLE_FINDER)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    env.update(PYTHONPATH=str(site), FM_ADAPTERS_CACHE=str(tmp_path / "cache"))

    def run(*args: str, cwd: Path) -> tuple[int, str, str]:
        proc = subprocess.run(
            [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
        )
        return proc.returncode, proc.stdout, proc.stderr

    return run


@pytest.fixture
def work(tmp_path):
    path = tmp_path / "work"
    path.mkdir()
    return path


def test_the_harness_imports_this_checkout(python, work) -> None:
    code, out, err = python("-c", "import adapters, specs; print(specs.__file__)", cwd=work)
    assert code == 0, err
    assert out.strip() == str(ROOT / "specs" / "__init__.py")


@pytest.mark.parametrize("name", ["specs", "interop"])
@pytest.mark.parametrize("content", [{}, {"make_specs.py": "X = 1\n"}], ids=["empty", "stray_py"])
def test_a_folder_in_the_working_directory_is_named_with_the_fix(python, work, name, content):
    folder = work / name
    folder.mkdir()
    for file, text in content.items():
        (folder / file).write_text(text)
    code, _, err = python("-m", "adapters", "--help", cwd=work)
    assert code == 1
    (line,) = err.strip().splitlines()  # one line, no traceback
    assert f"'{name}' would be imported from the folder {folder} (no __init__.py" in line
    assert f"hides fm-adapters' own '{name}' ({ROOT / name})" in line
    assert "Rename it, or run from another directory" in line
    code, _, err = python("-c", "import adapters", cwd=work)
    assert code == 1
    assert err.strip().splitlines()[-1].startswith(f"ImportError: import adapters: '{name}'")


def test_another_projects_package_or_module_is_named(python, work) -> None:
    (work / "specs").mkdir()
    (work / "specs" / "__init__.py").write_text("ClsToken = None\n")
    (work / "interop.py").write_text("")
    code, _, err = python("-c", "import adapters", cwd=work)
    assert code == 1
    assert f"the package {work / 'specs'} (not ours: no _src/ in it)" in err
    (work / "specs" / "__init__.py").unlink()
    (work / "specs").rmdir()
    code, _, err = python("-c", "import adapters", cwd=work)
    assert code == 1
    assert f"the module {work / 'interop.py'} (ours is a package)" in err


def test_a_folder_beside_a_script_says_move_the_script(python, work, tmp_path) -> None:
    project = tmp_path / "project"
    (project / "specs").mkdir(parents=True)
    (project / "specs" / "backbone.yaml").write_text("source: timm\nmodel_name: resnet18\n")
    (project / "run.py").write_text("import adapters\n")
    code, _, err = python(str(project / "run.py"), cwd=work)
    assert code == 1
    assert f"the folder {project / 'specs'}" in err
    assert (
        f"the running script's folder before the installed packages. Rename it, or move the script out of {project}."
        in err
    )
