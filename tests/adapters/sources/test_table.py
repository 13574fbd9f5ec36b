"""A user's source, registered from a module outside the package, goes the whole way: YAML load,
dump, build, embed (the output file's metadata holds its YAML) and the CLI."""

from __future__ import annotations

import importlib
import sys
import textwrap

import numpy as np
import pytest
import torch

import adapters
import specs
from adapters._src.app import cli, store
from adapters._src.app.backbone import resolve_preprocess
from adapters._src.app.data.datasets import load_dataset
from adapters._src.app.data.images import preprocess_batch
from adapters._src.app.engine import embed_dataset
from adapters._src.sources import table as source_table

MODULE = "fm_user_scale_source"
SOURCE = '''
import attrs
import torch

import adapters


@attrs.frozen
class ScaleSpec:
    factor: float
    transforms: tuple = ()


def build_scale(spec: ScaleSpec) -> adapters.Adapter:
    """(B, C, H, W) -> (B, 8): the first 8 pixels of each image, times factor."""
    post = adapters.transforms.from_specs(spec.transforms)
    return adapters.Adapter(
        forward=lambda p, x: post(p["factor"] * x.flatten(1)[:, :8]),
        params={"factor": torch.tensor(spec.factor)},
        spec=spec,
    )


adapters.register_source(ScaleSpec, build_scale)
'''


@pytest.fixture
def user(tmp_path, monkeypatch):
    """The user's module, written to a temporary folder and imported from there."""
    (tmp_path / f"{MODULE}.py").write_text(textwrap.dedent(SOURCE))
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(MODULE)
    yield module
    source_table.unregister_source(module.ScaleSpec)
    sys.modules.pop(MODULE, None)


def test_yaml_load_dump_and_build(user, tmp_path):
    path = tmp_path / "scale.yaml"
    path.write_text("source: scale\nfactor: 3.0\ntransforms: [l2_normalize]\n")
    spec = specs.load(path)
    assert spec == user.ScaleSpec(3.0, transforms=(specs.L2Normalize(),))
    specs.dump(spec, tmp_path / "again.yaml")
    assert specs.load(tmp_path / "again.yaml") == spec
    x = torch.randn(2, 3, 4, 4)
    got = adapters.build(spec)(x)
    want = torch.nn.functional.normalize(3.0 * x.flatten(1)[:, :8], dim=-1)
    torch.testing.assert_close(got, want)


def test_embed_writes_the_user_spec_as_yaml(user, tmp_path):
    backbone = adapters.build(user.ScaleSpec(2.0))
    ds = load_dataset("digits", limit=12)
    pre = resolve_preprocess(backbone, image_size=8)
    out = embed_dataset(backbone, ds, pre, batch_size=5, progress=False)
    store.save_embeddings(out, tmp_path / "scale.safetensors")
    back = store.load_embeddings(tmp_path / "scale.safetensors")
    assert specs.loads(back.metadata["spec"]) == user.ScaleSpec(2.0)
    pixels = preprocess_batch(ds.images[:12], pre)
    want = 2.0 * pixels.flatten(1)[:, :8].numpy()
    np.testing.assert_allclose(back.embeddings, want, rtol=1e-6)


def test_cli_embeds_a_user_spec_file(user, tmp_path, capsys):
    (tmp_path / "scale.yaml").write_text("source: scale\nfactor: 0.5\n")
    out = tmp_path / "cli.safetensors"
    argv = ["embed", str(tmp_path / "scale.yaml"), "--data", "digits", "--limit", "9"]
    code = cli.main([*argv, "--image-size", "8", "--device", "cpu", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    got = store.load_embeddings(out)
    assert got.embeddings.shape == (9, 8)
    assert specs.loads(got.metadata["spec"]) == user.ScaleSpec(0.5)


def test_unregistered_tag_is_one_clear_error(user, tmp_path):
    source_table.unregister_source(user.ScaleSpec)
    with pytest.raises(specs.SpecError, match=r"source: expected a source name, got 'scale'"):
        specs.loads("{source: scale, factor: 1.0}")
    with pytest.raises(adapters.BuildError, match="no builder for ScaleSpec"):
        adapters.build(user.ScaleSpec(1.0))
    adapters.register_source(user.ScaleSpec, user.build_scale)  # back, for the fixture


def test_register_source_checks_the_tag(user):
    with pytest.raises(ValueError, match="already has a builder"):
        adapters.register_source(user.ScaleSpec, user.build_scale)
    with pytest.raises(ValueError, match="not a built-in tag"):
        adapters.register_source(type("T", (user.ScaleSpec,), {}), user.build_scale, tag="timm")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_replacing_a_builtin_builder_keeps_its_device_check_and_registry_overrides():
    calls = []

    def replacement(spec, *, device=None):
        calls.append(device)
        raise AssertionError("not reached: the device check comes first")

    adapters.register_source(specs.TimmSpec, replacement, overwrite=True)
    try:
        spec = specs.TimmSpec("vit_tiny_patch16_224", pretrained=False)
        with pytest.raises(adapters.BuildError, match="torch sees no GPU"):
            adapters.build(spec, device="cuda")
        assert calls == []
        entry = adapters.registry_spec("timm/resnet18", {"out_indices": (1, 2)})
        assert entry.out_indices == (1, 2)
    finally:
        source_table.unregister_source(specs.TimmSpec)
    assert source_table.source_for(spec).build is not replacement


def test_the_source_table_names_one_module_per_builtin_tag():
    # a built-in source is its module plus its record's tag plus this line of the table
    assert set(source_table.BUILTIN) == set(specs.SOURCES)
    for tag, module in source_table.BUILTIN.items():
        assert importlib.util.find_spec(module) is not None, (tag, module)
