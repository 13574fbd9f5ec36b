"""Speed of ``interop.lower``: the lowered JAX backbone against torch eager and the alternatives.

``python -m benchmarks.lowering [--quick]`` (or ``python -m benchmarks --only lowering``).
Rows (ratio = ours / baseline time per call; below 1 is faster), all contenders of a case
interleaved round by round in one process, each row with the load average:

* ViT-S/16, ViT-tiny, ResNet-18, EfficientNet-Lite0 at batch 1 and 16: ``jax.jit`` of the
  lowered forward against torch eager (``no_grad``), and ``interop.jax_function`` (torch
  called from JAX) and the ONNX Runtime fast path against the same torch baseline; the
  compile time (first call) of the lowered forward;
* a tiny ``nn.Linear``: per-call cost against calling torch, and ``jax.grad`` against
  ``torch.autograd.grad``;
* the depthwise rewrite: XLA's grouped convolution and the multiply-add form against torch;
* attention at ViT shapes (197-1370 tokens): the table's SDPA (``attention.py``), its forms
  (dense, one-exp on all slices, blocked at 1-64 MiB) against torch's fused CPU kernel; exact GELU
  (``jax.nn.gelu``, the table's), the MLP's linear and a layer norm against torch;
* peak RSS of ViT-S/16 batch 16 in a fresh process, lowered JAX against torch eager.

Results: ``benchmarks/results/lowering_speed.{json,md}``, written after every row; a run of
some parts (``--only``) replaces those parts' rows and keeps the others.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import torch

import interop
from benchmarks._timing import interleaved, load_average, ratio_row
from interop._src.lowering.ops import attention as _attention
from interop._src.lowering.ops import conv as _conv

OUT = Path("benchmarks/results")
MODELS = {
    "ViT-S/16": "vit_small_patch16_224",
    "ViT-tiny": "vit_tiny_patch16_224",
    "ResNet-18": "resnet18",
    "EfficientNet-Lite0": "tf_efficientnet_lite0",
}


def _torch_adapter(module: torch.nn.Module) -> Any:
    from adapters._src.adapter import Adapter

    params = {k: v.detach() for k, v in module.state_dict().items()}

    def forward(p: dict[str, Any], x: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(module, p, (x,))

    return Adapter(forward=forward, params=params, spec=None, framework="torch", module=module)


def _onnx(model_name: str) -> Any:
    """The ONNX Runtime fast path for a random-weight timm model, or None if it cannot build."""
    try:
        import adapters
        import specs

        spec = specs.TimmSpec(
            model_name=model_name, pretrained=False, model_kwargs={"num_classes": 0}
        )
        return adapters.build(spec, runtime="onnxruntime")
    except Exception as err:  # optional contender: report and go on
        print(f"   onnxruntime path unavailable for {model_name}: {type(err).__name__}: {err}")
        return None


def _lowered(model_name: str) -> tuple[torch.nn.Module, Any, Any, float]:
    """The random-weight timm model, lowered once (dynamic batch) for both batch sizes."""
    import timm

    torch.manual_seed(0)
    module = timm.create_model(model_name, pretrained=False, num_classes=0).eval()
    start = time.perf_counter()
    forward, params = interop.lower(module, torch.randn(2, 3, 224, 224))
    return module, forward, params, time.perf_counter() - start


def backbone_rows(label: str, lowered: tuple, batch: int, quick: bool, ort: Any) -> list[dict]:
    module, forward, params, lower_s = lowered
    x = torch.randn(batch, 3, 224, 224)
    fn = jax.jit(forward)
    xj = interop.to_jax(x)
    start = time.perf_counter()
    jax.block_until_ready(fn(params, xj))
    compile_s = time.perf_counter() - start
    adapter = _torch_adapter(module)
    jf = jax.jit(interop.jax_function(adapter))
    jparams = interop.jax_params(adapter)

    def torch_eager() -> Any:
        with torch.no_grad():
            return module(x)

    fns = {
        "lowered": lambda: jax.block_until_ready(fn(params, xj)),
        "torch": torch_eager,
        "jax_function": lambda: jax.block_until_ready(jf(jparams, xj)),
    }
    if ort is not None:
        fns["onnxruntime"] = lambda: ort(x)
    reps = 3 if quick else 7
    t = interleaved(fns, repeats=reps, warmup=1, number=1 if batch > 1 else 3)
    case = f"{label} batch {batch}"
    extra = {"loadavg": load_average()}
    rows = [ratio_row(case, t, "lowered", "torch", lower_s=lower_s, compile_s=compile_s, **extra)]
    rows.append(ratio_row(case, t, "jax_function", "torch", **extra))
    if ort is not None:
        rows.append(ratio_row(case, t, "onnxruntime", "torch", **extra))
        rows.append(ratio_row(case, t, "lowered", "onnxruntime", **extra))
    return rows


def linear_rows(quick: bool) -> list[dict]:
    torch.manual_seed(0)
    lin = torch.nn.Linear(8, 8)
    x = torch.randn(4, 8)
    forward, params = interop.lower(lin, x)
    fn = jax.jit(forward)
    xj = interop.to_jax(x)

    def torch_call() -> Any:
        with torch.no_grad():
            return lin(x)

    t = interleaved(
        {"lowered": lambda: fn(params, xj).block_until_ready(), "torch": torch_call},
        repeats=5 if quick else 9,
        number=500,
        warmup=1,
    )
    rows = [
        ratio_row(
            "tiny Linear(8,8) batch 4 per call", t, "lowered", "torch", loadavg=load_average()
        )
    ]

    grad = jax.jit(jax.grad(lambda p, xx: jnp.sum(forward(p, xx) ** 2)))
    ps = list(lin.parameters())

    def torch_grad() -> Any:
        return torch.autograd.grad((lin(x) ** 2).sum(), ps)

    t = interleaved(
        {"jax.grad": lambda: jax.block_until_ready(grad(params, xj)), "torch": torch_grad},
        repeats=5 if quick else 9,
        number=500,
        warmup=1,
    )
    rows.append(
        ratio_row(
            "tiny Linear(8,8) grad w.r.t. params", t, "jax.grad", "torch", loadavg=load_average()
        )
    )
    return rows


def depthwise_rows(quick: bool) -> list[dict]:
    rows = []
    for c, hw, k, s in ((96, 112, 3, 1), (144, 56, 5, 2), (240, 28, 5, 1)):
        rows += _depthwise_case(c, hw, k, s, quick)
    return rows


def _depthwise_case(c: int, hw: int, k: int, s: int, quick: bool) -> list[dict]:
    x = torch.randn(16, c, hw, hw)
    conv = torch.nn.Conv2d(c, c, k, s, k // 2, groups=c, bias=False).eval()
    xj, wj = interop.to_jax(x), interop.to_jax(conv.weight.detach())
    pad = k // 2
    rewrite = jax.jit(lambda a, w: _conv.depthwise(a, w, (s, s), (pad, pad), (1, 1)))
    xla = jax.jit(
        lambda a, w: jax.lax.conv_general_dilated(
            a,
            w,
            (s, s),
            [(pad, pad)] * 2,
            feature_group_count=c,
            dimension_numbers=("NCHW", "OIHW", "NCHW"),
        )
    )

    def torch_call() -> Any:
        with torch.no_grad():
            return conv(x)

    t = interleaved(
        {
            "multiply-add rewrite": lambda: rewrite(xj, wj).block_until_ready(),
            "XLA grouped conv": lambda: xla(xj, wj).block_until_ready(),
            "torch": torch_call,
        },
        repeats=3 if quick else 7,
        warmup=1,
    )
    case = f"depthwise {k}x{k}/{s} 16x{c}x{hw}x{hw}"
    return [
        ratio_row(case, t, "multiply-add rewrite", "torch", loadavg=load_average()),
        ratio_row(case, t, "XLA grouped conv", "torch", loadavg=load_average()),
    ]


#: (label, batch, heads, tokens, head dim): ViT-S/16 and ViT-S/8 at 224 px, ViT-L/14 at 224 px,
#: ViT-L/14 at 518 px (DINOv2's size) at batch 4
ATTENTION_SHAPES = (
    ("ViT-S/16", 16, 6, 197, 64),
    ("ViT-S/8", 16, 6, 785, 64),
    ("ViT-L/14", 16, 16, 257, 64),
    ("ViT-L/14 518px", 4, 16, 1370, 64),
)


def attention_rows(quick: bool) -> list[dict]:
    """The table's SDPA (blocked) and the dense form against torch's flash CPU kernel."""
    rows = []
    for label, b, h, n, d in ATTENTION_SHAPES:
        rows += _attention_case(f"attention {label} {b}x{h}x{n}x{d}", (b, h, n, d), quick)
    return rows


def _attention_case(case: str, shape: tuple[int, ...], quick: bool) -> list[dict]:
    q, k, v = (torch.randn(*shape) for _ in range(3))
    qj, kj, vj = (interop.to_jax(t) for t in (q, k, v))
    scale = shape[-1] ** -0.5

    def timed(fn: Any) -> Any:
        fn = jax.jit(fn)
        return lambda: fn(qj, kj, vj).block_until_ready()

    fns: dict[str, Any] = {
        "torch": lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v),
        "table": timed(lambda a, b, c: _attention.attention(a, b, c, None, False, scale)[0]),
        "dense": timed(lambda a, b, c: _attention._dense(a, b, c, None, False, scale)[0]),
        "one-exp, all slices": timed(lambda a, b, c: _attention._softmax_matmul(a, b, c, scale)[0]),
    }
    for mib in (1, 4, 16, 64):
        g = _attention._group(shape[1], shape[2] * shape[2], mib << 20)
        fns[f"blocked {mib} MiB"] = timed(
            lambda a, b, c, g=g: _attention._blocked(a, b, c, scale, g)[0]
        )
    t = interleaved(fns, repeats=3 if quick else 7, warmup=1, number=3)
    names = [n for n in fns if n != "torch"]
    return [ratio_row(case, t, name, "torch", loadavg=load_average()) for name in names]


def vit_op_rows(quick: bool) -> list[dict]:
    """A ViT-S/16 block's other ops at batch 16 (3152 tokens of width 384), table vs torch.

    The MLP's first linear as the graph has it (``addmm`` of a transposed weight), exact GELU
    on its output, and a layer norm: with the attention rows, where a block's time goes.
    """
    x, h = torch.randn(3152, 384), torch.randn(3152, 1536) * 3
    w, b = torch.randn(1536, 384) * 0.05, torch.randn(1536)
    ln_w, ln_b = torch.randn(384), torch.randn(384)
    xj, hj, wj, bj, lwj, lbj = (interop.to_jax(t) for t in (x, h, w, b, ln_w, ln_b))
    t_ = interop.lowering.OPS
    # the arrays are arguments, not closed-over constants, which XLA would fold at compile time
    cases = {
        "addmm 3152x384 @ 384x1536": (
            lambda bb, xx, ww: t_["aten.addmm.default"](
                bb, xx, t_["aten.permute.default"](ww, [1, 0])
            ),
            (bj, xj, wj),
            lambda: torch.addmm(b, x, w.t()),
        ),
        "GELU exact 3152x1536": (
            t_["aten.gelu.default"],
            (hj,),
            lambda: torch.nn.functional.gelu(h),
        ),
        "GELU exact 3152x1536, jax.nn.gelu (erfc form)": (
            lambda hh: jax.nn.gelu(hh, approximate=False),
            (hj,),
            lambda: torch.nn.functional.gelu(h),
        ),
        "layer norm 3152x384": (
            lambda xx, ww, bb: t_["aten.native_layer_norm.default"](xx, [384], ww, bb, 1e-6)[0],
            (xj, lwj, lbj),
            lambda: torch.nn.functional.layer_norm(x, [384], ln_w, ln_b, 1e-6),
        ),
    }
    rows = []
    for case, (ours, args, theirs) in cases.items():
        fn = jax.jit(ours)
        # 20 calls per timing: torch's OpenMP threads spin for a while after each call and
        # slow a single ~1 ms XLA call that follows them on 2 cores
        t = interleaved(
            {"lowered": lambda f=fn, a=args: f(*a).block_until_ready(), "torch": theirs},
            repeats=5 if quick else 11,
            warmup=2,
            number=20,
        )
        rows.append(ratio_row(case, t, "lowered", "torch", loadavg=load_average()))
    return rows


_RSS_CHILD = """
import sys, torch, timm, jax
import interop
mode = sys.argv[1]
# the imports peak above what either path uses later: reset the high-water mark (Linux)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
torch.manual_seed(0)
m = timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=0).eval()
x = torch.randn(16, 3, 224, 224)
if mode == "torch":
    with torch.no_grad():
        for _ in range(3):
            m(x)
else:
    forward, params = interop.lower(m, x)
    f = jax.jit(forward)
    xj = interop.to_jax(x)
    for _ in range(3):
        jax.block_until_ready(f(params, xj))
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print(int(line.split()[1]) / 1024)
"""


def rss_rows() -> list[dict]:
    """Peak RSS (MiB) of ViT-S/16 batch 16, three calls, each path in a fresh process.

    The high-water mark is reset after the imports (``/proc/self/clear_refs``), so the peak is
    the model, its weights, the lowering and the calls, not the import-time transients.
    """
    peaks = {}
    for mode in ("torch", "lowered"):
        out = subprocess.run(
            [sys.executable, "-c", _RSS_CHILD, mode], capture_output=True, text=True, check=True
        )
        peaks[mode] = float(out.stdout.strip().splitlines()[-1])
    return [
        {
            "case": "peak RSS MiB, ViT-S/16 batch 16 (fresh process)",
            "ours": "lowered",
            "baseline": "torch",
            "ours_s": peaks["lowered"] / 1e3,  # reported in the 'ms' columns as MiB
            "baseline_s": peaks["torch"] / 1e3,
            "ratio": peaks["lowered"] / peaks["torch"],
            "spread": 0.0,
            "rss_mib_lowered": peaks["lowered"],
            "rss_mib_torch": peaks["torch"],
            "loadavg": load_average(),
        }
    ]


def _fmt_s(v: float | None) -> str:
    return "" if v is None else f"{v:.1f}"


def _merge(rows: list[dict], out: Path) -> list[dict]:
    """The rows already in ``out`` whose case was not measured again, then ``rows``."""
    path = out / "lowering_speed.json"
    old = json.loads(path.read_text())["rows"] if path.exists() else []
    fresh = {r["case"] for r in rows}
    return [r for r in old if r["case"] not in fresh] + rows


def _write(rows: list[dict], quick: bool, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rows = _merge(rows, out)
    env = {
        "torch_threads": torch.get_num_threads(),
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
        "cpu_count": os.cpu_count(),
    }
    (out / "lowering_speed.json").write_text(
        json.dumps({"quick": quick, "env": env, "rows": rows}, indent=1)
    )
    lines = [
        "# interop.lower speed",
        "",
        "ratio = ours / baseline time per call (below 1: ours faster); speedup = 1 / ratio. "
        "Contenders of a case interleaved in one process. loadavg = (1, 5, 15 min) when the "
        "row finished, on a shared 2-core machine. The RSS row compares MiB, not time.",
        "",
        f"torch threads: {env['torch_threads']}; XLA_FLAGS: `{env['XLA_FLAGS'] or '(none)'}`.",
        "",
        "| case | ours | baseline | ours ms | baseline ms | ratio | speedup | spread | compile s | loadavg |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['ours']} | {r['baseline']} | {r['ours_s'] * 1e3:.4g} "
            f"| {r['baseline_s'] * 1e3:.4g} | {r['ratio']:.3g} | {1 / r['ratio']:.3g} "
            f"| {r['spread']:.0%} | {_fmt_s(r.get('compile_s'))} "
            f"| {'/'.join(str(v) for v in r.get('loadavg', []))} |"
        )
    (out / "lowering_speed.md").write_text("\n".join(lines) + "\n")


PARTS = ["linear", "depthwise", "attention", "vit-ops", "backbones", "rss"]


def run(
    quick: bool = True, only: list[str] | None = None, onnx: bool = True, out: Path = OUT
) -> list[dict]:
    """Every row above, written to ``out`` as it is measured."""
    rows: list[dict] = []

    def add(new: list[dict]) -> None:
        rows.extend(new)
        for r in new:
            print(f"  {r['case']}: {r['ours']} / {r['baseline']} = {r['ratio']:.3g}", flush=True)
        _write(rows, quick, out)

    parts = only or PARTS
    if "linear" in parts:
        add(linear_rows(quick))
    if "depthwise" in parts:
        add(depthwise_rows(quick))
    if "attention" in parts:
        add(attention_rows(quick))
    if "vit-ops" in parts:
        add(vit_op_rows(quick))
    if "backbones" in parts:
        for label, name in MODELS.items():
            ort = _onnx(name) if onnx else None  # exported once, served at both batch sizes
            lowered = _lowered(name)
            for batch in (1, 16):
                add(backbone_rows(label, lowered, batch, quick, ort))
                jax.clear_caches()
    if "rss" in parts:
        add(rss_rows())
    return rows


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m benchmarks.lowering")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-onnx", action="store_true")
    p.add_argument("--only", nargs="+", choices=PARTS)
    p.add_argument(
        "--threads",
        type=int,
        help="torch intra-op threads (pair with XLA_FLAGS='--xla_cpu_multi_thread_eigen=false "
        "intra_op_parallelism_threads=1' for one thread each on a crowded machine)",
    )
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    run(quick=a.quick, only=a.only, onnx=not a.no_onnx)
