"""A ``-true`` backbone built from a checkpoint without its float32 weights
(``adapters/_src/low_memory.py``): every tensor equals the ordinary path's (float32 loaded, then
cast), the same checks refuse the same checkpoints, the fallbacks, and the memory it saves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import timm
import torch
import transformers
from safetensors.torch import save_file

import adapters
import specs

#: tiny timm models: attention + LayerNorm, BatchNorm (running statistics), depthwise convs
TIMM = {
    "vit": ("vit_tiny_patch16_224", {"img_size": 32, "patch_size": 8, "depth": 2}),
    "resnet": ("resnet18", {}),
    "convnext": ("convnext_atto", {}),
}
LOW = {"bf16-true": torch.bfloat16, "16-true": torch.float16}


def write(path: Path, state: dict[str, torch.Tensor]) -> str:
    state = {k: v.clone().contiguous() for k, v in state.items()}
    save_file(state, str(path)) if path.suffix == ".safetensors" else torch.save(state, path)
    return str(path)


def tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer, persistent or not, under every name."""
    return dict(module.named_parameters(remove_duplicate=False)) | dict(
        module.named_buffers(remove_duplicate=False)
    )


def assert_same_as_cast(low: adapters.Adapter, base: adapters.Adapter, dtype) -> None:
    """``low``'s tensors are ``base``'s (float32) cast as ``module.to(dtype)`` casts them."""
    got, want = tensors(low.module), tensors(base.module)
    assert list(got) == list(want)
    for name, t in want.items():
        expected = t.to(dtype) if t.is_floating_point() else t
        assert got[name].dtype == expected.dtype, name
        assert got[name].stride() == expected.stride(), name
        assert got[name].requires_grad == t.requires_grad, name
        assert type(got[name]) is type(t), name
        assert torch.equal(got[name], expected), name


def timm_spec(kind: str, tmp_path: Path, suffix: str) -> specs.TimmSpec:
    name, kw = TIMM[kind]
    kwargs = {"num_classes": 0, **kw}
    torch.manual_seed(1)
    state = timm.create_model(name, **kwargs).state_dict()
    path = write(tmp_path / f"{kind}{suffix}", state)
    return specs.TimmSpec(name, pretrained=False, checkpoint_path=path, model_kwargs=kwargs)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
@pytest.mark.parametrize("kind", list(TIMM))
def test_timm_checkpoint_loads_low_with_the_cast_tensors(tmp_path, kind, suffix) -> None:
    spec = timm_spec(kind, tmp_path, suffix)
    base = adapters.build(spec)
    for precision, dtype in LOW.items():
        low = adapters.build(spec, precision=precision)
        assert low.info["low_memory_load"] is True
        assert_same_as_cast(low, base, dtype)
    assert "low_memory_load" not in base.info


def test_huggingface_folder_loads_low_with_the_cast_tensors(tmp_path) -> None:
    config = transformers.ViTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=32,
        patch_size=8,
    )
    torch.manual_seed(0)
    transformers.ViTModel(config).save_pretrained(tmp_path / "vit")
    spec = specs.HuggingFaceSpec(str(tmp_path / "vit"))
    base = adapters.build(spec)
    low = adapters.build(spec, precision="bf16-true")
    assert low.info["low_memory_load"] is True
    assert_same_as_cast(low, base, torch.bfloat16)


class Tied(torch.nn.Module):
    """An embedding and an output layer sharing one weight."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Linear(4, 4)
        self.out = torch.nn.Linear(4, 4)
        self.out.weight = self.embed.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.embed(x))


class Derived(torch.nn.Module):
    """A non-persistent buffer computed from a parameter in ``__init__``."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)
        self.register_buffer("scale", self.lin.weight.detach().abs().mean(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x) * self.scale


@pytest.mark.parametrize(
    ("cls", "strict", "why"),
    [
        (Tied, True, "are one tensor"),
        (Derived, True, "scale is still on the meta device"),
        (torch.nn.Linear, False, "does not fill bias"),
    ],
    ids=["tied", "derived-buffer", "strict-false"],
)
def test_what_could_differ_takes_the_ordinary_path(tmp_path, cls, strict, why) -> None:
    init = {"in_features": 4, "out_features": 4} if cls is torch.nn.Linear else {}
    torch.manual_seed(2)
    state = cls(**init).state_dict()
    if not strict:
        del state["bias"]
    path = write(tmp_path / "m.safetensors", state)
    path_of = f"{__name__}.{cls.__name__}" if cls is not torch.nn.Linear else "torch.nn.Linear"
    spec = specs.ModuleSpec(path_of, init_args=init, checkpoint_path=path, strict=strict)
    base = adapters.build(spec)
    low = adapters.build(spec, precision="bf16-true")
    assert low.info["low_memory_load"].startswith("not used: ")
    assert why in low.info["low_memory_load"]
    assert_same_as_cast(low, base, torch.bfloat16)


def _bad(tmp_path: Path, case: str) -> tuple[str, dict]:
    """A checkpoint for ``torch.nn.Linear(6, 3)`` that the ordinary path refuses."""
    good = {"weight": torch.randn(3, 6), "bias": torch.randn(3)}
    if case == "missing":
        return str(tmp_path / "absent.safetensors"), {}
    if case == "digest":
        return write(tmp_path / "d.safetensors", good), {"checkpoint_sha256": "0" * 64}
    if case == "keys":
        return write(tmp_path / "k.safetensors", {"weight": good["weight"]}), {}
    if case == "prefix":
        return write(tmp_path / "p.safetensors", {f"m.{k}": v for k, v in good.items()}), {}
    if case == "shape":
        return write(tmp_path / "s.pth", {**good, "weight": torch.zeros(3, 5)}), {}
    path = Path(write(tmp_path / "t.safetensors", good))
    path.write_bytes(path.read_bytes()[:-8] if case == "truncated" else b"garbage!" * 4)
    return str(path), {}


@pytest.mark.parametrize(
    "case", ["missing", "digest", "keys", "prefix", "shape", "truncated", "garbage"]
)
def test_a_refused_checkpoint_is_refused_alike(tmp_path, case) -> None:
    path, kw = _bad(tmp_path, case)
    spec = specs.ModuleSpec(
        "torch.nn.Linear",
        init_args={"in_features": 6, "out_features": 3},
        checkpoint_path=path,
        **kw,
    )
    with pytest.raises(adapters.BuildError) as ordinary:
        adapters.build(spec)
    with pytest.raises(adapters.BuildError) as low:
        adapters.build(spec, precision="bf16-true")
    assert str(low.value) == str(ordinary.value)


CHILD = """
import json, sys
import adapters, specs
def hwm():
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024
# everything a build imports, imported first; then the peak is reset to what is resident now
adapters.build(specs.ModuleSpec("torch.nn.Linear", init_args={"in_features": 2, "out_features": 2}))
spec = specs.ModuleSpec("tests_low_memory_net.Net", checkpoint_path=sys.argv[1])
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = hwm()
adapters.build(spec, precision=sys.argv[2])
print(json.dumps(hwm() - before))
"""
NET = """
import torch
class Net(torch.nn.Sequential):
    def __init__(self):
        super().__init__(*[torch.nn.Linear(1024, 1024) for _ in range(48)])
"""


@pytest.mark.skipif(
    not os.path.exists("/proc/self/clear_refs"), reason="resets the peak RSS the Linux way"
)
@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_the_float32_weights_are_never_held(tmp_path, suffix) -> None:
    """Peak memory of building 48 x 4 MiB float32 layers from a checkpoint: at bf16-true well
    under half of 32-true (the ordinary path peaked at 32-true's or more; a memory-mapped
    ``.pth`` file's pages are paged out as they are cast)."""
    (tmp_path / "tests_low_memory_net.py").write_text(textwrap.dedent(NET))
    sys.path.insert(0, str(tmp_path))
    try:
        import tests_low_memory_net

        torch.manual_seed(0)
        path = write(tmp_path / f"net{suffix}", tests_low_memory_net.Net().state_dict())
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("tests_low_memory_net", None)
    root = str(Path(__file__).resolve().parents[3])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), root])}

    def peak(precision: str) -> float:
        run = [sys.executable, "-c", CHILD, path, precision]
        out = subprocess.run(run, capture_output=True, text=True, env=env, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    full, low = peak("32-true"), peak("bf16-true")
    assert full > 150  # the float32 weights (192 MiB) were read
    assert low < 0.4 * full
