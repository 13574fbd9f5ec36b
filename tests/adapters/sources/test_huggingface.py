"""A HuggingFace model with custom code runs it only when the spec trusts it, and never prompts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers

REPO = Path(__file__).resolve().parents[3]

CUSTOM_CODE = """
from pathlib import Path

from transformers import ViTConfig, ViTModel

Path({marker!r}).write_text("the repository's code ran")


class MarkerConfig(ViTConfig):
    model_type = "marker_vit"


class MarkerModel(ViTModel):
    config_class = MarkerConfig
"""

BUILD = """
import json, sys
import adapters, specs
from adapters import BuildError

spec = specs.HuggingFaceSpec(model_name_or_path=sys.argv[1], trust_remote_code=sys.argv[2] == "1")
try:
    backbone = adapters.build(spec)
except BuildError as err:
    print(json.dumps({"field": err.field, "message": str(err)}))
else:
    print(json.dumps({"built": type(backbone.spec).__name__}))
"""


@pytest.fixture(scope="module")
def custom_code_dir(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny saved ViT whose config.json maps to custom code that writes a marker file."""
    path = tmp_path_factory.mktemp("hf_custom")
    marker = path.parent / f"{path.name}-MARKER"
    config = transformers.ViTConfig(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=17,
        image_size=8,
        patch_size=4,
    )
    torch.manual_seed(0)
    transformers.ViTModel(config).save_pretrained(path)
    (path / "marker_code.py").write_text(CUSTOM_CODE.format(marker=str(marker)))
    saved = json.loads((path / "config.json").read_text())
    # a model type transformers does not know, so only the custom code can load it
    saved["model_type"] = "marker_vit"
    saved["auto_map"] = {
        "AutoConfig": "marker_code.MarkerConfig",
        "AutoModel": "marker_code.MarkerModel",
    }
    (path / "config.json").write_text(json.dumps(saved))
    return path, marker


def _build_in_subprocess(
    model: Path | str, trust: bool, tmp_path: Path, **env_vars: str
) -> tuple[dict, str]:
    """Build in a fresh process whose stdin is an open pipe nobody writes to."""
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_MODULES_CACHE=str(tmp_path / "modules"))
    env.update(env_vars)
    proc = subprocess.Popen(
        [sys.executable, "-c", BUILD, str(model), "1" if trust else "0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        # generous: a slow, shared machine imports torch and transformers in here
        out, err = proc.communicate(timeout=180)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1]), out + err


# a fresh interpreter importing torch and transformers: several seconds
@pytest.mark.slow
def test_untrusted_custom_code_is_refused_without_prompt(custom_code_dir, tmp_path) -> None:
    model_dir, marker = custom_code_dir
    result, output = _build_in_subprocess(model_dir, False, tmp_path)
    assert result["field"] == "trust_remote_code", result
    assert result["message"].startswith("trust_remote_code: ")
    assert "marker_code.MarkerModel" in result["message"]
    assert "trust_remote_code: true" in result["message"]
    assert not marker.exists()
    # transformers' stdin prompt ("Do you wish to run the custom code? [y/N]") never appeared
    assert "Do you wish" not in output


# a fresh interpreter importing torch and transformers: several seconds
@pytest.mark.slow
def test_untrusted_custom_code_from_the_hub_cache_is_refused(custom_code_dir, tmp_path) -> None:
    """A hub id whose cached config maps to custom code (offline, so nothing is fetched)."""
    model_dir, marker = custom_code_dir
    commit = "0" * 40
    repo = tmp_path / "hub" / "models--acme--marker-vit"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for item in model_dir.iterdir():
        (snapshot / item.name).write_bytes(item.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    result, output = _build_in_subprocess(
        "acme/marker-vit", False, tmp_path, HF_HUB_CACHE=str(tmp_path / "hub"), HF_HUB_OFFLINE="1"
    )
    assert result["field"] == "trust_remote_code", result
    assert "'acme/marker-vit' needs its own Python code" in result["message"]
    assert not marker.exists()
    assert "Do you wish" not in output


# a fresh interpreter importing torch and transformers: several seconds
@pytest.mark.slow
def test_trusted_custom_code_runs(custom_code_dir, tmp_path) -> None:
    model_dir, marker = custom_code_dir
    result, output = _build_in_subprocess(model_dir, True, tmp_path)
    assert result == {"built": "HuggingFaceSpec"}, output
    assert marker.read_text() == "the repository's code ran"
    marker.unlink()


def test_trust_is_passed_explicitly(custom_code_dir, monkeypatch) -> None:
    """Even for a model without custom code, transformers gets trust_remote_code=False."""
    import adapters
    import specs

    model_dir, _ = custom_code_dir
    plain = model_dir.parent / "plain_vit"
    config = transformers.ViTConfig(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=17,
        image_size=8,
        patch_size=4,
    )
    transformers.ViTModel(config).save_pretrained(plain)
    seen: list[object] = []
    original = transformers.AutoModel.from_pretrained

    def recording(*args, **kwargs):
        seen.append(kwargs.get("trust_remote_code", "unset"))
        return original(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", recording)
    adapters.build(specs.HuggingFaceSpec(model_name_or_path=str(plain)))
    assert seen == [False]
