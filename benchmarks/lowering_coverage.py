"""Coverage of ``interop.lower``: which architectures lower, how exactly, how fast.

``python -m benchmarks.lowering_coverage [--quick] [--only NAME ...] [--resume]`` (or
``python -m benchmarks --only lowering_coverage``). For every architecture behind the
registry's entries (rebuilt locally with random weights: the registry's own model kwargs on the
matching timm / HuggingFace architecture, depth cut to ``DEPTH`` blocks, widths and ops kept),
a list of popular timm architectures and HuggingFace ViT / Dinov2 / Swin: lowers or not (the
missing ops named), max abs diff against torch eager (float32, random input), export and XLA
compile time, and the JAX (jit) / torch-eager time ratio at batch 16. Rows are written after
every model to ``benchmarks/results/lowering_coverage.{json,md}``, so a killed run keeps what
it measured (``--resume`` skips the names already there).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
import torch

import interop
from benchmarks._timing import interleaved

OUT = Path("benchmarks/results")
DEPTH = 2  # blocks kept in the registry's large ViTs (every block has the same ops)
BATCH = 16

#: popular timm architectures across families (random weights, each at its own input size)
TIMM = [
    # ViT / DeiT / BEiT / EVA / DINOv2
    "vit_tiny_patch16_224",
    "vit_small_patch16_224",
    "vit_base_patch16_224",
    "vit_small_patch14_dinov2",
    "vit_small_patch14_reg4_dinov2",
    "vit_relpos_small_patch16_224",
    "vit_medium_patch16_gap_256",
    "vit_small_patch16_rope_224",
    "flexivit_small",
    "deit_tiny_patch16_224",
    "deit_small_patch16_224",
    "deit_tiny_distilled_patch16_224",
    "deit3_small_patch16_224",
    "beit_base_patch16_224",
    "beitv2_base_patch16_224",
    "eva02_tiny_patch14_224",
    "eva02_small_patch14_224",
    "cait_xxs24_224",
    "xcit_nano_12_p16_224",
    "mixer_b16_224",
    # ResNet / ResNeXt and relatives
    "resnet18",
    "resnet50",
    "resnet26d",
    "resnext50_32x4d",
    "seresnet50",
    "resnetv2_50",
    "res2net50_26w_4s",
    "resnest14d",
    "densenet121",
    "dla34",
    # EfficientNet
    "efficientnet_b0",
    "tf_efficientnet_lite0",
    "efficientnet_es",
    "tf_efficientnetv2_b0",
    # ConvNeXt
    "convnext_atto",
    "convnext_tiny",
    "convnextv2_atto",
    # Swin
    "swin_tiny_patch4_window7_224",
    "swinv2_tiny_window8_256",
    # RegNet
    "regnetx_002",
    "regnety_004",
    "regnety_016",
    # MobileNet and other mobile nets
    "mobilenetv2_100",
    "mobilenetv3_small_100",
    "mobilenetv3_large_100",
    "mobilenetv4_conv_small",
    "ghostnet_100",
    "repvgg_a0",
    "efficientvit_b0",
    # hybrids
    "levit_128s",
    "poolformer_s12",
    "coatnet_0_rw_224",
    "maxvit_tiny_rw_224",
    "pvt_v2_b0",
    "edgenext_xx_small",
    "inception_v3",
]

#: the DINOv2 models default to 518 px; the sweep runs them at 224 like the others
TIMM_KWARGS = {
    "vit_small_patch14_dinov2": {"img_size": 224},
    "vit_small_patch14_reg4_dinov2": {"img_size": 224},
}


def _timm(name: str, **kwargs: Any) -> Callable[[], torch.nn.Module]:
    def make() -> torch.nn.Module:
        import timm

        return timm.create_model(name, pretrained=False, num_classes=0, **kwargs)

    return make


def _resolve(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The registry's kwargs with import-path strings ('timm.layers.SwiGLUPacked') resolved."""
    out = {}
    for k, v in kwargs.items():
        if isinstance(v, str) and v.count(".") >= 2 and v.split(".")[0] in ("timm", "torch"):
            mod, _, attr = v.rpartition(".")
            v = getattr(importlib.import_module(mod), attr)
        out[k] = v
    return out


def _registry_timm(entry: str, arch: str, **extra: Any) -> Callable[[], torch.nn.Module]:
    """A registry timm entry's own kwargs on ``arch`` (its local equivalent), depth cut."""

    def make() -> torch.nn.Module:
        import timm

        import adapters

        spec = adapters.registry_spec(entry)
        kwargs = _resolve(dict(getattr(spec, "model_kwargs", {}) or {}))
        kwargs.pop("out_indices", None)
        kwargs.update(extra)
        # every token after the final norm (what the registry's transforms read), at 224 px
        kwargs.update(depth=DEPTH, img_size=224, num_classes=0, global_pool="")
        return timm.create_model(arch, pretrained=False, **kwargs)

    return make


#: the volume the 3D registry encoders are checked on: the smallest their five 2x downsamplings
#: leave more than one voxel for instance norm in
VOLUME = (1, 64, 64, 64)


def _registry_module(entry: str, **overrides: Any) -> Callable[[], torch.nn.Module]:
    """A registry ``ModuleSpec`` entry's class on its own init args (``overrides`` win), random
    weights, taking a ``VOLUME`` input."""

    def make() -> torch.nn.Module:
        import adapters

        spec = adapters.registry_spec(entry)
        mod, _, cls = spec.class_path.rpartition(".")
        module = getattr(importlib.import_module(mod), cls)(**{**spec.init_args, **overrides})
        module.coverage_input = VOLUME
        return module

    return make


def _hf(config: str, model: str, **cfg: Any) -> Callable[[], torch.nn.Module]:
    def make() -> torch.nn.Module:
        import transformers

        return getattr(transformers, model)(getattr(transformers, config)(**cfg))

    return make


_VITB = {"hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072}
_VITL = {"hidden_size": 1024, "num_attention_heads": 16, "intermediate_size": 4096}

#: registry entry -> the architecture behind it (random weights, depth DEPTH)
REGISTRY: dict[str, Callable[[], torch.nn.Module]] = {
    "pathology/bioptimus_h0_mini": _registry_timm(
        "pathology/bioptimus_h0_mini", "vit_base_patch14_reg4_dinov2"
    ),
    "pathology/bioptimus_h_optimus_0": _registry_timm(
        "pathology/bioptimus_h_optimus_0", "vit_giant_patch14_reg4_dinov2"
    ),
    "pathology/histai_hibou_b": _hf(
        "Dinov2WithRegistersConfig",
        "Dinov2WithRegistersModel",
        **{k: v for k, v in _VITB.items() if k != "intermediate_size"},
        num_hidden_layers=DEPTH,
        num_register_tokens=4,
        patch_size=14,
        image_size=224,
    ),
    "pathology/histai_hibou_l": _hf(
        "Dinov2WithRegistersConfig",
        "Dinov2WithRegistersModel",
        hidden_size=1024,
        num_attention_heads=16,
        num_hidden_layers=DEPTH,
        num_register_tokens=4,
        patch_size=14,
        image_size=224,
    ),
    "pathology/kaiko_midnight_12k": _hf(
        "Dinov2Config",
        "Dinov2Model",
        hidden_size=1536,
        num_attention_heads=24,
        num_hidden_layers=DEPTH,
        use_swiglu_ffn=True,
        patch_size=14,
        image_size=224,
    ),
    "pathology/kaiko_vits16": _registry_timm("pathology/kaiko_vits16", "vit_small_patch16_224"),
    "pathology/kaiko_vits8": _registry_timm("pathology/kaiko_vits8", "vit_small_patch8_224"),
    "pathology/kaiko_vitb16": _registry_timm("pathology/kaiko_vitb16", "vit_base_patch16_224"),
    "pathology/kaiko_vitb8": _registry_timm("pathology/kaiko_vitb8", "vit_base_patch8_224"),
    "pathology/kaiko_vitl14": _registry_timm("pathology/kaiko_vitl14", "vit_large_patch14_dinov2"),
    "pathology/lunit_vits16": _registry_timm("pathology/lunit_vits16", "vit_small_patch16_224"),
    "pathology/lunit_vits8": _registry_timm("pathology/lunit_vits8", "vit_small_patch8_224"),
    "pathology/mahmood_uni": _registry_timm("pathology/mahmood_uni", "vit_large_patch16_224"),
    "pathology/mahmood_uni2_h": _registry_timm("pathology/mahmood_uni2_h", "vit_giant_patch14_224"),
    "pathology/owkin_phikon": _hf(
        "ViTConfig", "ViTModel", **_VITB, num_hidden_layers=DEPTH, image_size=224, patch_size=16
    ),
    "pathology/owkin_phikon_v2": _hf(
        "Dinov2Config",
        "Dinov2Model",
        hidden_size=1024,
        num_attention_heads=16,
        num_hidden_layers=DEPTH,
        patch_size=16,
        image_size=224,
    ),
    "pathology/paige_virchow2": _registry_timm(
        "pathology/paige_virchow2",
        "vit_huge_patch14_224",
        reg_tokens=4,
        mlp_ratio=5.3375,
        init_values=1e-5,
        no_embed_class=True,
    ),
    "pathology/prov_gigapath": _registry_timm(
        "pathology/prov_gigapath", "vit_giant_patch14_dinov2", init_values=1e-5, mlp_ratio=5.33334
    ),
    "universal/vit_base_patch16_224_dino_1chan": _registry_timm(
        "universal/vit_base_patch16_224_dino_1chan", "vit_base_patch16_224"
    ),
    "universal/vit_small_patch16_224_dino": _registry_timm(
        "universal/vit_small_patch16_224_dino", "vit_small_patch16_224"
    ),
    "universal/vit_small_patch16_224_dino_1chan": _registry_timm(
        "universal/vit_small_patch16_224_dino_1chan", "vit_small_patch16_224"
    ),
    "universal/vit_small_patch16_224_random": _registry_timm(
        "universal/vit_small_patch16_224_random", "vit_small_patch16_224"
    ),
    "universal/vit_tiny_patch16_224_random": _registry_timm(
        "universal/vit_tiny_patch16_224_random", "vit_tiny_patch16_224"
    ),
    "pathology/hkust_gpfm": _registry_timm("pathology/hkust_gpfm", "vit_large_patch14_dinov2"),
    "universal/efficientnet_lite0_imagenet": _timm("tf_efficientnet_lite0"),
    "segresnet_encoder": _registry_module("segresnet_encoder"),
    "radiology/suprem_segresnet": _registry_module("radiology/suprem_segresnet"),
    "radiology/swin_unetr_encoder": _registry_module("radiology/swin_unetr_encoder"),
    "radiology/suprem_swin_unetr": _registry_module("radiology/suprem_swin_unetr"),
    "radiology/universal_swinunetr": _registry_module("radiology/universal_swinunetr"),
    "radiology/voco_b": _registry_module("radiology/voco_b"),
    # VoCo-L / -H: feature size 96 / 192, cut to 48 (the same ops; the full ones need GBs here)
    "radiology/voco_l": _registry_module("radiology/voco_l", feature_size=48),
    "radiology/voco_h": _registry_module("radiology/voco_h", feature_size=48),
}

HF = {
    "hf/ViTModel-base": _hf("ViTConfig", "ViTModel", **_VITB, num_hidden_layers=12),
    "hf/Dinov2Model-small": _hf(
        "Dinov2Config",
        "Dinov2Model",
        hidden_size=384,
        num_attention_heads=6,
        patch_size=14,
        image_size=224,
    ),
    "hf/SwinModel-tiny": _hf("SwinConfig", "SwinModel"),
}


def candidates() -> list[tuple[str, str, Callable[[], torch.nn.Module]]]:
    """(group, name, factory) for every architecture of the sweep, registry first."""
    rows = [("registry", n, f) for n, f in REGISTRY.items()]
    rows += [("hf", n, f) for n, f in HF.items()]
    rows += [("timm", n, _timm(n, **TIMM_KWARGS.get(n, {}))) for n in TIMM]
    return rows


def _input(module: torch.nn.Module, batch: int) -> torch.Tensor:
    volume = getattr(module, "coverage_input", None)
    if volume is not None:
        return torch.randn(batch, *volume)
    cfg = getattr(module, "pretrained_cfg", None) or {}
    c, h, w = cfg.get("input_size", (3, 224, 224))
    config = getattr(module, "config", None)
    if config is not None and hasattr(config, "image_size"):
        c, h = getattr(config, "num_channels", 3), config.image_size
        h = h if isinstance(h, int) else h[0]
        w = h
    embed = getattr(module, "patch_embed", None)
    if embed is not None and hasattr(embed, "proj"):
        c = getattr(embed.proj, "in_channels", c)  # XCiT's proj is a Sequential
        if isinstance(getattr(embed, "img_size", None), (tuple, list)):
            h, w = embed.img_size
    return torch.randn(batch, c, h, w)


def _leaves(out: Any) -> list[Any]:
    if hasattr(out, "items"):
        return [v for _, v in sorted(out.items()) if v is not None]
    if isinstance(out, (tuple, list)):
        return [x for o in out for x in _leaves(o)]
    return [out]


def measure(
    name: str, factory: Callable[[], torch.nn.Module], quick: bool, timing: bool = True
) -> dict[str, Any]:
    """One architecture: lowers or not, max abs diff, export/compile time, speed ratio.

    Without ``timing`` the check runs at batch 2 and no speed is measured (the cheap pass).
    """
    row: dict[str, Any] = {"name": name}
    torch.manual_seed(0)
    module = factory().eval()
    row["params_m"] = round(sum(p.numel() for p in module.parameters()) / 1e6, 2)
    x = _input(module, 2)
    row["input"] = list(x.shape[1:])
    start = time.perf_counter()
    try:
        forward, params = interop.lower(module, x)
    except interop.LoweringError as err:
        row.update(lowered=False, error=str(err).splitlines()[1:-1] or str(err)[:500])
        return row
    row["lower_s"] = time.perf_counter() - start
    fn = jax.jit(forward)
    # the 3D encoders time batch 2: at 16 volumes of 64^3 a SwinUNETR call pair takes ~2 min
    xb = _input(module, (2 if hasattr(module, "coverage_input") else BATCH) if timing else 2)
    xj = interop.to_jax(xb)
    start = time.perf_counter()
    got = jax.block_until_ready(fn(params, xj))
    row["compile_s"] = time.perf_counter() - start
    row["compile_batch"] = xb.shape[0]
    with torch.no_grad():
        want = module(xb)
    g, w = _leaves(got), [t.float().numpy() for t in _leaves(want)]
    diffs = [float(np.abs(np.asarray(a) - b).max()) for a, b in zip(g, w, strict=True)]
    row["max_abs_diff"] = max(diffs)
    row["out_scale"] = max(float(np.abs(b).max()) for b in w)
    row["rel_diff"] = row["max_abs_diff"] / max(row["out_scale"], 1e-12)
    row["lowered"] = True
    if not timing:
        return row

    def jax_call() -> Any:
        return jax.block_until_ready(fn(params, xj))

    def torch_call() -> Any:
        with torch.no_grad():
            return module(xb)

    t = interleaved({"jax": jax_call, "torch": torch_call}, repeats=1 if quick else 3, warmup=0)
    row["jax_ms"] = t["jax"]["median_s"] * 1e3
    row["torch_ms"] = t["torch"]["median_s"] * 1e3
    row["speedup"] = t["torch"]["median_s"] / t["jax"]["median_s"]  # >1: JAX faster
    row["spread"] = max(t["jax"]["spread"], t["torch"]["spread"])
    return row


def to_markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    ok = [r for r in rows if r.get("lowered")]
    exact = [r for r in ok if r["max_abs_diff"] <= 1e-4]
    lines = [
        f"# interop.lower coverage ({meta['date']})",
        "",
        f"{len(ok)}/{len(rows)} lower; {len(exact)}/{len(rows)} within 1e-4 max abs diff. "
        f"float32, random weights and input; registry ViTs cut to {DEPTH} blocks, VoCo-L/H to feature size 48, the 3D "
        f"encoders on a {'x'.join(map(str, VOLUME))} volume (timed at batch 2); diff at the "
        f"compile batch (2 in the accuracy pass, {BATCH} where speed was measured). "
        "speedup = torch-eager time / JAX (jit) time (above 1: JAX faster), median of "
        "interleaved rounds. Load average (1, 5, 15 min) at each row; the machine is shared.",
        "",
        f"Machine: {meta['machine']}",
        "",
        "| group | architecture | lowers | max abs diff | out scale | rel diff | lower s "
        "| compile s | JAX ms | torch ms | speedup | load | missing ops / error |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        err = r.get("error") or ""
        if isinstance(err, list):
            err = "; ".join(e.strip(" -") for e in err)
        lines.append(
            "| {group} | {name} | {lowers} | {diff} | {scale} | {rel} | {lower} | {comp} | {jms} | {tms} "
            "| {sp} | {load} | {err} |".format(
                group=r.get("group", ""),
                name=r["name"],
                lowers="yes" if r.get("lowered") else "**no**",
                diff=f"{r['max_abs_diff']:.2e}" if "max_abs_diff" in r else "",
                scale=f"{r['out_scale']:.3g}" if "out_scale" in r else "",
                rel=f"{r['rel_diff']:.1e}" if "rel_diff" in r else "",
                lower=f"{r['lower_s']:.1f}" if "lower_s" in r else "",
                comp=f"{r['compile_s']:.1f}" if "compile_s" in r else "",
                jms=f"{r['jax_ms']:.0f}" if "jax_ms" in r else "",
                tms=f"{r['torch_ms']:.0f}" if "torch_ms" in r else "",
                sp=f"{r['speedup']:.2f}" if "speedup" in r else "",
                load="/".join(f"{v:.1f}" for v in r.get("loadavg", ())),
                err=err.replace("|", "\\|")[:300],
            )
        )
    return "\n".join(lines) + "\n"


def sweep(
    quick: bool = False,
    only: list[str] | None = None,
    resume: bool = False,
    out: Path = OUT,
    timing: bool = True,
) -> list[dict[str, Any]]:
    """Measure every candidate, writing JSON and markdown after each one.

    With ``resume``, rows already measured are kept; with ``timing`` too, rows that lowered
    without a speed figure are measured again (the cheap pass first, speed after).
    """
    out.mkdir(parents=True, exist_ok=True)
    path = out / "lowering_coverage.json"
    rows: list[dict[str, Any]] = []
    if resume and path.exists():
        rows = json.loads(path.read_text())["rows"]
    done = {r["name"] for r in rows if not (timing and r.get("lowered") and "speedup" not in r)}
    from benchmarks._results import machine

    m = machine()
    meta = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{m['platform']}, {m['cpu_count']} cores, torch {m['torch']}, jax {m['jax']}",
    }
    for group, name, factory in candidates():
        if (only and name not in only) or (name in done and not only):
            continue
        print(f"-- {name}", flush=True)
        load_before = os.getloadavg()
        try:
            row = measure(name, factory, quick, timing)
        except Exception as err:  # one architecture's failure is a result, not the end
            traceback.print_exc()
            row = {"name": name, "lowered": False, "error": f"{type(err).__name__}: {err}"[:500]}
        row["group"] = group
        row["loadavg"] = [round(v, 2) for v in load_before]
        rows = [r for r in rows if r["name"] != name] + [row]
        print({k: v for k, v in row.items() if k != "error"}, row.get("error", ""), flush=True)
        path.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, default=str))
        (out / "lowering_coverage.md").write_text(to_markdown(rows, meta))
        jax.clear_caches()
        gc.collect()
    return rows


def run(quick: bool = True) -> list[dict[str, Any]]:
    """The ``python -m benchmarks`` hook: the sweep, as ratio rows (ours = JAX, baseline = torch)."""
    rows = sweep(quick=quick)
    return [
        {
            "case": f"lower {r['name']}",
            "ours": "jax.jit(lowered)",
            "baseline": "torch eager",
            "ours_s": r["jax_ms"] / 1e3,
            "baseline_s": r["torch_ms"] / 1e3,
            "ratio": r["jax_ms"] / r["torch_ms"],
            "spread": r["spread"],
            "max_abs_diff": r["max_abs_diff"],
        }
        for r in rows
        if r.get("lowered")
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lowering_coverage")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--resume", action="store_true", help="skip names already measured")
    parser.add_argument("--only", nargs="+", help="only these names")
    parser.add_argument("--no-timing", action="store_true", help="lowering and accuracy only")
    args = parser.parse_args(argv)
    rows = sweep(quick=args.quick, only=args.only, resume=args.resume, timing=not args.no_timing)
    ok = sum(bool(r.get("lowered")) for r in rows)
    print(f"{ok}/{len(rows)} lowered; wrote {OUT}/lowering_coverage.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
