"""Part 2: ONNX Runtime's CUDA provider, our IO-bound adapter vs eva's host round trip.

For ViT-tiny/16 and ViT-S/16 at batch 16 (random weights, exported once with
``adapters.export_onnx``), the same session is called two ways on a CUDA input:

* ours: ``adapters.build(OnnxSpec(path, device="cuda"))``: the input is bound in place
  (IO binding over the tensor's own device memory), the output stays on the GPU and comes
  back as a torch tensor sharing ONNX Runtime's buffer;
* eva (``ONNXModel.forward``): ``x.cpu().numpy()`` -> ``session.run`` -> ``torch.from_numpy``
  -> ``.to(x.device)``: two host copies per call.

Before timing: both agree with the torch backbone (CUDA: within ``ATOL_CUDA``, since ONNX
Runtime's CUDA kernels use TF32), the input is bound at the tensor's own address and the
output is on the GPU. The dry run does all of it with the CPU provider.

Then the precision row (`precision_rows`) of the last model: ``adapters.build(spec,
runtime="onnxruntime", device=, precision="16-true")`` (ONNX Runtime's float16 export)
against the same at ``32-true``, interleaved.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from benchmarks.gpu import precision_rows
from benchmarks.gpu._common import Device, Model, Profile, Recorder, cuda_missing, ort_cuda_missing

ATOL_CPU = 1e-4
ATOL_CUDA = 2e-2  # TF32 matmuls in ONNX Runtime's CUDA provider, against fp32 torch on the CPU


def eva_style(session: Any) -> Any:
    """kaiko-ai/eva's ``ONNXModel.forward``: a host round trip through NumPy."""
    import torch

    name = session.get_inputs()[0].name

    def forward(x: Any) -> Any:
        outputs = session.run(None, {name: x.detach().cpu().numpy()})
        return torch.from_numpy(outputs[0]).to(x.device)

    return forward


def _model(rec: Recorder, dev: Device, p: Profile, m: Model, tmp: Path) -> None:
    import torch

    import adapters
    import specs
    from adapters._src.sources.onnx.serve import bind
    from benchmarks._timing import interleaved, ratio_row

    case = f"{m.label} batch {p.batch}"
    torch.manual_seed(0)
    reference = adapters.build(specs.TimmSpec(m.name, pretrained=False, model_kwargs=m.kwargs))
    x_cpu = torch.randn(p.batch, 3, m.image, m.image, generator=torch.Generator().manual_seed(1))
    onnx_spec = adapters.export_onnx(reference, tmp / f"{m.name}.onnx", x_cpu[:2])
    providers = ["CUDAExecutionProvider"] if dev.cuda else ["CPUExecutionProvider"]
    ours = adapters.build(specs.OnnxSpec(path=onnx_spec.path, device=dev.kind, providers=providers))
    eva = eva_style(ours.module)
    x = x_cpu.to(dev.torch)
    with torch.no_grad():
        want = reference(x_cpu)
    atol = ATOL_CUDA if dev.cuda else ATOL_CPU

    def parity() -> tuple[bool, dict]:
        a, b = ours(x), eva(x)
        dev.sync()
        da = float((a.cpu() - want).abs().max())
        db = float((b.cpu() - want).abs().max())
        ok = da <= atol and db <= atol and a.device == x.device
        return ok, {
            "ours_max_abs": da,
            "eva_max_abs": db,
            "atol": atol,
            "out_device": str(a.device),
        }

    def bound_in_place() -> tuple[bool, dict]:
        name = ours.info["inputs"][0].name
        _binding, values = bind(ours.module, {name: x}, [o.name for o in ours.info["outputs"]])
        value = values[name]
        return value.data_ptr() == x.data_ptr(), {"ort_input_device": value.device_name()}

    rec.check(f"onnx {case}: ours and eva match torch; output on the input's device", parity)
    rec.check(f"onnx {case}: input bound at the tensor's own address", bound_in_place)

    def timed(fn: Any) -> Any:
        def thunk() -> Any:
            y = fn(x)
            dev.sync()
            return y

        return thunk

    def row() -> dict:
        timings = interleaved(
            {"bound (ours)": timed(ours), "eva round trip": timed(eva)},
            repeats=p.repeats,
            number=3 if dev.cuda else 1,
            warmup=2,
        )
        return ratio_row(
            f"onnx {dev.kind} {case}",
            timings,
            "bound (ours)",
            "eva round trip",
            providers=list(ours.info["providers"]),
        )

    rec.row(f"onnx {dev.kind} {case}", row)
    if m == p.onnx_models[-1]:
        _precisions(rec, dev, p, m, x)


def _precisions(rec: Recorder, dev: Device, p: Profile, m: Model, x: Any) -> None:
    """The precision row of ``m`` on ONNX Runtime (see the module docstring)."""
    import torch

    import adapters
    import specs

    spec = specs.TimmSpec(m.name, pretrained=False, model_kwargs=m.kwargs)
    calls, providers = {}, {}
    for precision in (precision_rows.BASE, *precision_rows.LOW["onnxruntime"]):
        with rec.step(f"onnx {m.label} {precision} (runtime='onnxruntime')"):
            torch.manual_seed(0)
            built = adapters.build(
                spec, runtime="onnxruntime", device=dev.kind, precision=precision,
                example_input=x[:1].cpu(),
            )  # fmt: skip
            providers[precision] = list(built.info.get("providers") or [])

            def call(b: Any = built) -> Any:
                y = b(x)
                dev.sync()
                return y

            calls[precision] = call
    precision_rows.rows(
        rec, "onnx", "onnxruntime", f"{dev.kind} {m.label} batch {p.batch}", calls,
        repeats=p.repeats, number=3 if dev.cuda else 1, providers=providers,
    )  # fmt: skip


def run(p: Profile) -> dict[str, Any]:
    """Checks and rows for every ONNX model of ``p`` (see the module docstring)."""
    rec = Recorder()
    missing = cuda_missing(p) or (ort_cuda_missing() if not p.dry else None)
    if missing:
        rec.skip("onnx part (CUDA provider with IO binding vs host round trip)", missing)
        return rec.result()
    dev = Device(p)
    with tempfile.TemporaryDirectory(prefix="fm-gpu-onnx-") as tmp:
        for m in p.onnx_models:
            with rec.step(f"onnx {m.label}"):
                _model(rec, dev, p, m, Path(tmp))
    return rec.result()
