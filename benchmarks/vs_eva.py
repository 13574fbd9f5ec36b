"""Ours vs kaiko-eva's own wrappers on the same model, weights and input.

Needs the ``bench`` extra (``pip install -e ".[bench]"``, which installs ``kaiko-eva[vision]``);
never a runtime dependency. Each case builds eva's wrapper and our adapter from the same
config, hands eva's weights to our ``forward`` as ``params`` (so both compute the same
function), checks the outputs agree, then times the two interleaved. eva's wrappers run under
``torch.no_grad()`` in eval mode, as eva's own predict loop runs them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from benchmarks._timing import Skip, interleaved, ratio_row


def _eva():
    try:
        from eva.core.models import transforms as eva_transforms
        from eva.core.models import wrappers as core
        from eva.vision.models import wrappers as vision
    except ImportError as err:  # the runner prints this one line and goes on
        raise Skip(
            f"needs kaiko-eva, from the bench extra: pip install -e '.[bench]' ({err})"
        ) from err
    return core, vision, eva_transforms


def _max_diff(a: Any, b: Any) -> float:
    return float((torch.as_tensor(a).float() - torch.as_tensor(b).float()).abs().max())


def _case(
    name: str,
    eva_model: torch.nn.Module,
    ours: Any,
    x: torch.Tensor,
    params: dict[str, torch.Tensor] | None,
    repeats: int,
) -> dict[str, Any]:
    eva_model.eval()
    p = ours.params if params is None else params

    def run_eva() -> Any:
        with torch.no_grad():
            return eva_model(x)

    def run_ours() -> Any:
        return ours.forward(p, x)

    diff = _max_diff(run_ours(), run_eva())
    timings = interleaved({"ours": run_ours, "eva": run_eva}, repeats=repeats)
    return ratio_row(name, timings, "ours", "eva", batch=x.shape[0], max_abs_diff=diff)


def _tiny_hf_vit(directory: Path) -> str:
    import transformers

    config = transformers.ViTConfig(
        hidden_size=192,
        num_hidden_layers=12,
        num_attention_heads=3,
        intermediate_size=768,
        image_size=224,
        patch_size=16,
    )
    torch.manual_seed(0)
    transformers.ViTModel(config, add_pooling_layer=False).save_pretrained(directory)
    return str(directory)


def run(quick: bool = True) -> Iterator[dict[str, Any]]:
    """One row per eva wrapper: ours / eva time per call (below 1: ours is faster)."""
    import adapters
    import specs

    core, vision, eva_transforms = _eva()
    torch.manual_seed(0)
    batch = 4 if quick else 16
    repeats = 5 if quick else 11
    x = torch.randn(batch, 3, 224, 224)

    def state(m: torch.nn.Module) -> dict[str, torch.Tensor]:
        return dict(m.state_dict())

    # TimmModel: same architecture, eva's weights as our params.
    eva_timm = vision.TimmModel("vit_small_patch16_224", pretrained=False)
    ours = adapters.build(specs.TimmSpec("vit_small_patch16_224", pretrained=False))
    yield _case("TimmModel vit_small", eva_timm, ours, x, state(eva_timm.model), repeats)

    # ModelFromFunction with timm.create_model, a CNN.
    args = {"model_name": "resnet18", "pretrained": False, "num_classes": 0}
    eva_fn = core.ModelFromFunction(path=_import("timm.create_model"), arguments=args)
    ours = adapters.build(specs.FunctionSpec("timm.create_model", arguments=args))
    yield _case("ModelFromFunction resnet18", eva_fn, ours, x, state(eva_fn.model), repeats)

    # ModelFromRegistry: a named universal backbone.
    eva_reg = vision.ModelFromRegistry("universal/vit_small_patch16_224_random")
    ours = adapters.build(specs.RegistrySpec("universal/vit_small_patch16_224_random"))
    params = {k: v for k, v in state(eva_reg.model).items() if k in ours.params}
    if params.keys() != set(ours.params):
        params = {k.split(".", 1)[1]: v for k, v in state(eva_reg.model).items()}
    yield _case("ModelFromRegistry vit_small random", eva_reg, ours, x, params, repeats)

    with tempfile.TemporaryDirectory() as tmp:
        # HuggingFaceModel with eva's CLS extractor vs ours with ClsToken.
        path = _tiny_hf_vit(Path(tmp) / "hf")
        eva_hf = core.HuggingFaceModel(path, transforms=eva_transforms.ExtractCLSFeatures())
        ours = adapters.build(specs.HuggingFaceSpec(path, transforms=(specs.ClsToken(),)))
        yield _case(
            "HuggingFaceModel ViT-tiny + CLS", eva_hf, ours, x, state(eva_hf.model), repeats
        )

        # ONNXModel (host round trip) vs our IO-bound ONNX adapter, same file.
        onnx_path = str(Path(tmp) / "vit_tiny.onnx")
        adapters.export_onnx(
            specs.TimmSpec("vit_tiny_patch16_224", pretrained=False), onnx_path, x[:1]
        )
        eva_onnx = core.ONNXModel(onnx_path)
        ours = adapters.build(specs.OnnxSpec(onnx_path))
        yield _case("ONNXModel vit_tiny", eva_onnx, ours, x, None, repeats)


def _import(path: str) -> Callable[..., Any]:
    module, _, name = path.rpartition(".")
    return getattr(__import__(module, fromlist=[name]), name)


if __name__ == "__main__":
    try:
        for row in run(quick=True):
            print(row)
    except Skip as skip:
        print(f"vs_eva skipped: {skip}")
