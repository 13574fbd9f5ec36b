"""Adapter overhead: ``adapter(x)`` vs the raw ``module(x)`` call, for every torch-family source.

For ViT-tiny, ViT-S/16 and ResNet-18 (random weights, no head), at batch 1 and 16, each of the
five torch-family sources builds its adapter through the real loader:

- ``module``: `specs.ModuleSpec`, a ``class_path`` + ``init_args`` (timm's
  ``VisionTransformer``; for ResNet-18 `ResNet18` below, because timm's ``ResNet`` takes its
  block *class* as an argument, which a data spec cannot hold);
- ``function``: `specs.FunctionSpec` calling ``timm.create_model``;
- ``timm``: `specs.TimmSpec`;
- ``torch_hub``: `specs.TorchHubSpec` on a local hub directory (a ``hubconf.py`` written to a
  temp dir returning the same timm models, ``source: local``);
- ``huggingface``: `specs.HuggingFaceSpec` on a ``transformers`` ``ViTConfig`` /
  ``ResNetConfig`` of the same sizes, saved with ``save_pretrained`` to a temp dir.

The four timm-family sources load one shared checkpoint (``checkpoint_path``), so they hold the
same weights; their outputs are checked equal to each other, and every adapter's output is
checked equal to its own raw ``module(x)`` before anything is timed. All the calls of one
(model, batch) case are interleaved in one run, so load from other processes hits them alike.
Rows are ``adapter(x) / raw module(x)`` per source (the ``source`` column); below 1.02 means
within 2% of the raw call. For TimmSpec a second row times ``forward(copy, x)``: a different
params dict with the same values (``functional_call`` on a per-thread structural copy), the path
taken by swapped or fine-tuned weights.

A first case times the per-call machinery alone: a ``Linear(8, 8)`` adapter (a
`specs.ModuleSpec`) against its raw call, 200 calls per timing; ``overhead_us`` is the
difference per call.

A last case compares the two thread-safety designs of ``adapters/_src/torch_module.py`` with
4 threads sharing one adapter: per-thread structural copies (used) vs a global lock.

Quick mode (the default; ``--full`` for all) drops batch 16 for ViT-tiny and ResNet-18 (batch 16
runs for ViT-S only) and uses fewer repeats (7 x 2 calls at batch 1, 3 at batch 16, instead of
15 x 3 and 9); the time each suite took is in its results record.

Run: ``python -m benchmarks.adapter_overhead [--full]``.
"""

from __future__ import annotations

import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import timm.models.resnet
import torch

from benchmarks._timing import interleaved, ratio_row

#: the torch-family sources, in the order their rows appear
SOURCES = ("module", "function", "timm", "torch_hub", "huggingface")

#: model -> (timm name, ModuleSpec class_path, init_args, HuggingFace config class, its kwargs)
MODELS: dict[str, tuple[str, str, dict[str, Any], str, dict[str, Any]]] = {
    "vit_tiny": (
        "vit_tiny_patch16_224",
        "timm.models.vision_transformer.VisionTransformer",
        {"img_size": 224, "patch_size": 16, "embed_dim": 192, "depth": 12, "num_heads": 3},
        "ViTConfig",
        {"hidden_size": 192, "num_hidden_layers": 12, "num_attention_heads": 3,
         "intermediate_size": 768},
    ),
    "vit_small": (
        "vit_small_patch16_224",
        "timm.models.vision_transformer.VisionTransformer",
        {"img_size": 224, "patch_size": 16, "embed_dim": 384, "depth": 12, "num_heads": 6},
        "ViTConfig",
        {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 6,
         "intermediate_size": 1536},
    ),
    "resnet18": (
        "resnet18",
        "benchmarks.adapter_overhead.ResNet18",
        {},
        "ResNetConfig",
        {"embedding_size": 64, "hidden_sizes": [64, 128, 256, 512], "depths": [2, 2, 2, 2],
         "layer_type": "basic"},
    ),
}  # fmt: skip

HUBCONF = '''\
dependencies = ["torch", "timm"]

import timm


def model(name, pretrained=False, **kwargs):
    """The named timm model (the benchmark passes the same name as its TimmSpec)."""
    return timm.create_model(name, pretrained=pretrained, **kwargs)
'''


class ResNet18(timm.models.resnet.ResNet):
    """timm's ResNet-18 as a class taking only plain-data arguments (for `specs.ModuleSpec`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(block=timm.models.resnet.BasicBlock, layers=(2, 2, 2, 2), **kwargs)


def build_sources(model: str, where: Path) -> dict[str, Any]:
    """``{source: adapter}`` for one model; the timm-family ones share one checkpoint.

    Args:
        model: a key of `MODELS`.
        where: a scratch directory for the checkpoint, hub dir and HuggingFace folder.
    """
    import transformers
    from safetensors.torch import save_file

    import adapters
    import specs

    timm_name, class_path, init_args, hf_config, hf_kwargs = MODELS[model]
    torch.manual_seed(0)
    reference = timm.create_model(timm_name, pretrained=False, num_classes=0)
    ckpt = where / f"{model}.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(ckpt))
    hub = where / "hub"
    hub.mkdir(exist_ok=True)
    (hub / "hubconf.py").write_text(HUBCONF)
    hf_dir = where / f"hf_{model}"
    torch.manual_seed(0)
    config = getattr(transformers, hf_config)(**hf_kwargs)
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.utils.logging.disable_progress_bar()  # saving / loading bars clutter the log
    try:
        transformers.AutoModel.from_config(config).save_pretrained(hf_dir)

        spec_of = {
            "module": specs.ModuleSpec(
                class_path, init_args={**init_args, "num_classes": 0}, checkpoint_path=str(ckpt)
            ),
            "function": specs.FunctionSpec(
                "timm.create_model",
                arguments={"model_name": timm_name, "pretrained": False, "num_classes": 0},
                checkpoint_path=str(ckpt),
            ),
            "timm": specs.TimmSpec(
                timm_name,
                pretrained=False,
                checkpoint_path=str(ckpt),
                model_kwargs={"num_classes": 0},
            ),
            "torch_hub": specs.TorchHubSpec(
                str(hub),
                "model",
                source="local",
                pretrained=False,
                checkpoint_path=str(ckpt),
                model_kwargs={"name": timm_name, "num_classes": 0},
            ),
            "huggingface": specs.HuggingFaceSpec(str(hf_dir)),
        }
        return {source: adapters.build(spec_of[source]) for source in SOURCES}
    finally:
        if bars:
            transformers.utils.logging.enable_progress_bar()


def _features(y: Any) -> torch.Tensor:
    return y.last_hidden_state if hasattr(y, "last_hidden_state") else y


def _case(model: str, batch: int, backbones: dict[str, Any], quick: bool) -> list[dict[str, Any]]:
    x = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(batch))
    fns: dict[str, Any] = {}
    timm_family = []
    for source, backbone in backbones.items():
        module = backbone.module

        def raw(module: torch.nn.Module = module) -> Any:
            with torch.no_grad():
                return module(x)

        # the adapter gives exactly the raw call's output before anything is timed
        reference = _features(raw())
        torch.testing.assert_close(_features(backbone(x)), reference, rtol=0, atol=0)
        if source != "huggingface":
            timm_family.append((source, reference))
        fns[f"{source} raw"] = raw
        fns[f"{source} adapter"] = lambda backbone=backbone: backbone(x)
    # one checkpoint, one architecture: the timm-family sources agree with each other
    for source, y in timm_family[1:]:
        torch.testing.assert_close(y, timm_family[0][1], rtol=0, atol=0, msg=source)

    timm_backbone = backbones["timm"]
    copied = {k: v.clone() for k, v in timm_backbone.params.items()}
    torch.testing.assert_close(
        timm_backbone.forward(copied, x), timm_family[0][1], rtol=0, atol=1e-5
    )
    fns["timm forward(copy)"] = lambda: timm_backbone.forward(copied, x)

    if batch == 1:
        repeats, number = (7, 2) if quick else (15, 3)
    else:
        repeats, number = (3, 1) if quick else (9, 1)
    # the parity checks above ran every callable at this batch size: they were the warmup
    timings = interleaved(fns, repeats=repeats, number=number, warmup=0)
    case = f"{model} batch {batch}"
    rows = []
    for source in backbones:
        pair = {
            "adapter(x)": timings[f"{source} adapter"],
            "raw module(x)": timings[f"{source} raw"],
        }
        rows.append(
            ratio_row(
                case, pair, "adapter(x)", "raw module(x)", suite="adapter_overhead", source=source
            )
        )
    pair = {"forward(copy, x)": timings["timm forward(copy)"], "raw module(x)": timings["timm raw"]}
    rows.append(
        ratio_row(case, pair, "forward(copy, x)", "raw module(x)", suite="adapter_overhead", source="timm")
    )  # fmt: skip
    return rows


def _threads_case(quick: bool) -> dict[str, Any]:
    """4 threads x calls with their own params: per-thread copies vs one lock."""
    import adapters
    import specs
    from adapters._src.torch_module import module_params

    backbone = adapters.build(
        specs.TimmSpec("vit_tiny_patch16_224", pretrained=False, model_kwargs={"num_classes": 0})
    )
    module = backbone.module
    x = torch.randn(1, 3, 224, 224)
    params = [{k: v.clone() for k, v in module_params(module).items()} for _ in range(4)]
    lock = threading.Lock()

    def locked(p: Any) -> Any:
        with lock, torch.no_grad():
            return torch.func.functional_call(module, p, (x,))

    calls = 8 if quick else 16
    # one long-lived pool, as in a server: per-thread copies are made once, in the warmup
    pool = ThreadPoolExecutor(max_workers=4)

    def pool_run(fn: Any) -> Any:
        return list(pool.map(fn, [params[i % 4] for i in range(calls)]))

    fns = {
        "per-thread copies": lambda: pool_run(lambda p: backbone.forward(p, x)),
        "global lock": lambda: pool_run(locked),
    }
    try:
        timings = interleaved(fns, repeats=3 if quick else 9, warmup=1)
    finally:
        pool.shutdown()
    return ratio_row(
        "vit_tiny 4 threads",
        timings,
        "per-thread copies",
        "global lock",
        suite="adapter_overhead",
        source="timm",
    )


def _linear_case(quick: bool) -> dict[str, Any]:
    """The per-call machinery alone: a ``Linear(8, 8)`` adapter against its raw call."""
    import adapters
    import specs

    torch.manual_seed(0)
    backbone = adapters.build(
        specs.ModuleSpec("torch.nn.Linear", init_args={"in_features": 8, "out_features": 8})
    )
    module, x = backbone.module, torch.randn(4, 8)

    def raw() -> Any:
        with torch.no_grad():
            return module(x)

    torch.testing.assert_close(backbone(x), raw(), rtol=0, atol=0)
    timings = interleaved(
        {"adapter(x)": lambda: backbone(x), "raw module(x)": raw},
        repeats=7 if quick else 15,
        number=200,
        warmup=1,
    )
    row = ratio_row(
        "tiny Linear(8,8) batch 4",
        timings,
        "adapter(x)",
        "raw module(x)",
        suite="adapter_overhead",
        source="module",
    )
    row["overhead_us"] = round((row["ours_s"] - row["baseline_s"]) * 1e6, 2)
    return row


def run(quick: bool = True) -> Iterator[dict[str, Any]]:
    """Rows ``adapter / raw module call`` per model, batch and source (see the module doc)."""
    yield _linear_case(quick)
    with tempfile.TemporaryDirectory(prefix="fm-bench-") as tmp:
        for model in MODELS:
            where = Path(tmp) / model
            where.mkdir()
            backbones = build_sources(model, where)
            batches = (1, 16) if (not quick or model == "vit_small") else (1,)
            for batch in batches:
                yield from _case(model, batch, backbones, quick)
            del backbones
    yield _threads_case(quick)


def _print(rows: Iterable[dict[str, Any]]) -> None:
    head = f"{'case':20} {'source':12} {'ours':18} {'ours ms':>9} {'base ms':>9} {'ratio':>7} {'spread':>7}"
    print(head)
    for r in rows:
        print(
            f"{r['case']:20} {r['source']:12} {r['ours']:18} {r['ours_s'] * 1e3:9.2f} "
            f"{r['baseline_s'] * 1e3:9.2f} {r['ratio']:7.3f} {r['spread']:7.2f}"
        )


if __name__ == "__main__":
    _print(run(quick="--full" not in sys.argv))
