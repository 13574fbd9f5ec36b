"""The runtime caches (``cache_entry.py``) for both runtimes that keep one: an entry is trusted
for what it records (its key, the weights digest, its files' sha256), never for where it lies;
builds of one entry in several processes at once all succeed; an unusable cache location is a
warning naming it, and the build goes on uncached.

Every case runs on real builds (a tiny ``torch.nn.Linear``, exported to ONNX or lowered to JAX)
and compares the served output with the torch module's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import adapters
import specs
from adapters._src.runtimes import cache_entry
from adapters._src.runtimes.cache_entry import CACHE_ENV, CacheWarning

#: exports and lowers real models (seconds each): out of the fast lane (-m 'not slow')
pytestmark = pytest.mark.slow

RUNTIMES = ["onnxruntime", "jax"]
#: the info field that names each runtime's cached file
PATH_FIELD = {"onnxruntime": "onnx_path", "jax": "jax_path"}
SPEC = specs.ModuleSpec("torch.nn.Linear", init_args={"in_features": 8, "out_features": 4})
EXAMPLE = torch.zeros(2, 8)
X = torch.linspace(-1, 1, 24).reshape(3, 8)


def _build(runtime: str, seed: int) -> adapters.Adapter:
    # a random-init spec: the seed makes the weights
    return adapters.build(SPEC, runtime=runtime, example_input=EXAMPLE, seed=seed)


def _torch_output(seed: int) -> np.ndarray:
    with torch.no_grad():
        return adapters.build(SPEC, seed=seed)(X).numpy()


def _entry(served: adapters.Adapter, runtime: str) -> Path:
    return Path(served.info[PATH_FIELD[runtime]]).parent


def _rewrite_key(entry: Path, key: str) -> None:
    """The copied meta made to claim this build's key: only the weights digest can tell."""
    meta = entry / "meta.json"
    meta.write_text(re.sub(r'"key": "[0-9a-f]+"', f'"key": "{key}"', meta.read_text()))


@pytest.mark.parametrize("rewrite_key", [False, True], ids=["copied", "copied-key-rewritten"])
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_an_entry_copied_over_another_is_a_named_miss(
    runtime: str, rewrite_key: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    mine, other = _build(runtime, seed=0), _build(runtime, seed=1)
    entry = _entry(mine, runtime)
    assert entry != _entry(other, runtime)
    shutil.rmtree(entry)
    shutil.copytree(_entry(other, runtime), entry)
    if rewrite_key:
        _rewrite_key(entry, mine.info["cache_key"])
    with pytest.warns(CacheWarning, match=re.escape(repr(str(entry)))) as caught:
        again = _build(runtime, seed=0)
    message = str(caught[0].message)
    assert ("weights" if rewrite_key else "key") in message, message
    assert again.info["cache"] == "miss"
    np.testing.assert_allclose(np.asarray(again(X)), _torch_output(0), atol=1e-5, rtol=0)
    hit = _build(runtime, seed=0)  # rebuilt: intact again, no warning
    assert hit.info["cache"] == "hit"
    np.testing.assert_allclose(np.asarray(hit(X)), _torch_output(0), atol=1e-5, rtol=0)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_an_entry_that_cannot_be_removed_is_served_around(
    runtime: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Junk in the entry's place that this user cannot remove (as another user's entry in a
    shared cache, simulated): every try to publish finds it, and the build is served uncached."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    entry = _entry(_build(runtime, seed=0), runtime)
    shutil.rmtree(entry)
    entry.mkdir()
    (entry / "junk").write_text("not an entry")
    monkeypatch.setattr(cache_entry, "remove", lambda entry: None)
    with pytest.warns(CacheWarning, match=re.escape(repr(str(entry)))):
        served = _build(runtime, seed=0)
    assert served.info["cache"] == "off: an unusable entry is in the way"
    assert sorted(p.name for p in entry.iterdir()) == ["junk"]
    np.testing.assert_allclose(np.asarray(served(X)), _torch_output(0), atol=1e-5, rtol=0)
    if runtime == "onnxruntime":  # its model file lives on beside the session
        assert Path(served.info["onnx_path"]).is_file()


WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path

    import numpy as np
    import torch

    import adapters
    import specs

    runtime, ready, index, out = sys.argv[1:]
    ready = Path(ready)
    (ready / index).touch()
    deadline = time.monotonic() + 300  # start together, once all four have imported
    while len(list(ready.iterdir())) < 4 and time.monotonic() < deadline:
        time.sleep(0.005)
    torch.manual_seed(0)
    spec = specs.ModuleSpec("torch.nn.Linear", init_args={"in_features": 8, "out_features": 4})
    served = adapters.build(spec, runtime=runtime, example_input=torch.zeros(2, 8))
    x = torch.linspace(-1, 1, 24).reshape(3, 8)
    np.save(out, np.asarray(served(x)))
    print(served.info["cache"])
    """
)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_four_processes_build_one_entry_at_once(runtime: str, tmp_path: Path) -> None:
    cache, ready = tmp_path / "cache", tmp_path / "ready"
    ready.mkdir()
    env = {**os.environ, CACHE_ENV: str(cache), "PYTHONWARNINGS": "always"}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, runtime, str(ready), str(i), str(tmp_path / f"{i}.npy")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    results = [(w.wait(timeout=600), *w.communicate()) for w in workers]
    for code, _, err in results:
        assert code == 0, err[-3000:]
        assert "CacheWarning" not in err, err[-3000:]  # a lost race is not a corrupt entry
    assert {out.strip() for _, out, _ in results} <= {"miss", "hit"}
    want = _torch_output(0)
    for i in range(4):
        np.testing.assert_allclose(np.load(tmp_path / f"{i}.npy"), want, atol=1e-5, rtol=0)
    entries = [p.name for p in (cache / ("onnx" if runtime == "onnxruntime" else "jax")).iterdir()]
    assert len(entries) == 1 and not entries[0].startswith("."), entries  # no leftovers


def _a_file(tmp_path: Path) -> Path:
    path = tmp_path / "cache-is-a-file"
    path.write_text("not a directory")
    return path


def _a_dangling_link(tmp_path: Path) -> Path:
    path = tmp_path / "cache-link"
    path.symlink_to(tmp_path / "gone")
    return path


def _read_only(tmp_path: Path) -> Path:
    path = tmp_path / "read-only"
    path.mkdir()
    path.chmod(0o555)
    try:
        (path / "probe").mkdir()
    except PermissionError:
        return path
    (path / "probe").rmdir()
    path.chmod(0o755)
    pytest.skip("chmod 0o555 does not stop this user (root) from writing: no read-only case")


LOCATIONS = {"a-file": _a_file, "a-dangling-link": _a_dangling_link, "read-only": _read_only}


@pytest.mark.parametrize("location", list(LOCATIONS))
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_an_unusable_cache_location_warns_and_builds_uncached(
    runtime: str, location: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = LOCATIONS[location](tmp_path)
    monkeypatch.setenv(CACHE_ENV, str(root))
    try:
        with pytest.warns(CacheWarning, match=CACHE_ENV) as caught:
            served = _build(runtime, seed=0)
    finally:
        if root.is_dir():
            root.chmod(0o755)  # let tmp_path be cleaned
    assert str(root) in str(caught[0].message)
    assert served.info["cache"].startswith("off")
    np.testing.assert_allclose(np.asarray(served(X)), _torch_output(0), atol=1e-5, rtol=0)
