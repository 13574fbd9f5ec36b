"""Part 3: ``interop.jax_function`` on the GPU: where the torch call runs, and what it costs.

For a tiny ``Linear(8, 8)`` at batch 4 (per-call cost) and ViT-S/16 at batch 16 (relative
cost; goal under 5%), with the torch adapter and its params on the GPU:

* a probe call records the device of the input the torch forward receives inside JAX's
  callback: the same device as the adapter means the callback runs on JAX's device memory;
  ``cpu`` means JAX hands the callback host copies (``jax.pure_callback`` does), so the
  backbone runs on the host or fails the adapter's device check;
* ``jax.jit(jax_function(adapter))(jax_params(adapter), x)`` agrees with the direct call;
* times: that jitted call (``block_until_ready``) vs ``adapter.forward`` under
  ``torch.no_grad`` followed by ``torch.cuda.synchronize``, interleaved.
"""

from __future__ import annotations

from typing import Any

from benchmarks.gpu._common import (
    Device,
    Profile,
    Recorder,
    cuda_missing,
    error_text,
    jax_gpu_missing,
)

ATOL = 2e-3  # the callback may run the backbone elsewhere (host fp32 vs CUDA TF32 convolutions)


def torch_backbone(model: Any, dev: Device, *, spec: Any = None) -> tuple[Any, str]:
    """A torch adapter on ``dev``: ``adapters.build(spec, device=...)`` where the installed
    ``adapters`` has it, else the module moved first and wrapped (the same forward)."""
    import inspect

    import adapters
    from adapters._src.torch_module import torch_adapter

    if spec is not None:
        if "device" in inspect.signature(adapters.build).parameters:
            return adapters.build(spec, device=str(dev.torch)), "adapters.build(spec, device=)"
        model = adapters.build(spec).module
    return torch_adapter(model.to(dev.torch), spec), "torch_adapter(module.to(device))"


def _recording(adapter: Any, seen: list[str]) -> Any:
    """The same adapter, noting the device of every input its forward is called with."""
    import attrs
    from torch._subclasses.fake_tensor import FakeTensor

    def forward(params: Any, x: Any) -> Any:
        if not isinstance(x, FakeTensor):  # jax_function's shape inference runs fake tensors
            seen.append(str(getattr(x, "device", type(x).__name__)))
        return adapter.forward(params, x)

    return attrs.evolve(adapter, forward=forward)


def _case(
    rec: Recorder, dev: Device, p: Profile, label: str, adapter: Any, x: Any, *, tiny: bool
) -> None:
    import jax
    import numpy as np
    import torch

    import interop
    from benchmarks._timing import interleaved, ratio_row

    params = interop.jax_params(adapter)
    xj = interop.to_jax(x, copy=True)
    with torch.no_grad():
        want = adapter.forward(adapter.params, x).cpu().numpy()

    def where() -> tuple[bool, dict]:
        seen: list[str] = []
        details: dict[str, Any] = {"callback_input_devices": seen}
        try:
            jax.block_until_ready(
                jax.jit(interop.jax_function(_recording(adapter, seen)))(params, xj)
            )
        except Exception as err:  # the adapter's device check fires inside the callback
            details["error"] = error_text(err)
        return bool(seen) and all(s == str(dev.torch) for s in seen), details

    rec.check(f"jax_function {label}: the torch forward receives {dev.torch} memory", where)
    f = jax.jit(interop.jax_function(adapter))

    def parity() -> tuple[bool, dict]:
        y = f(params, xj)
        diff = float(np.abs(np.asarray(y) - want).max())
        return diff <= ATOL, {"max_abs": diff, "out_device": str(y.devices())}

    rec.check(f"jax_function {label}: jit output equals the direct call", parity)

    def direct() -> Any:
        with torch.no_grad():
            y = adapter.forward(adapter.params, x)
        dev.sync()
        return y

    def row() -> dict:
        timings = interleaved(
            {"jax_function": lambda: f(params, xj).block_until_ready(), "torch": direct},
            repeats=p.repeats if tiny else max(3, p.repeats // 2),
            number=50 if tiny else 1,
            warmup=2,
        )
        out = ratio_row(f"jax_function {dev.kind} {label}", timings, "jax_function", "torch")
        out["overhead_s"] = out["ours_s"] - out["baseline_s"]
        return out

    rec.row(f"jax_function {dev.kind} {label}", row)


def run(p: Profile) -> dict[str, Any]:
    """Checks and rows for the tiny Linear and ``p.vit`` (see the module docstring)."""
    import torch

    import specs

    rec = Recorder()
    missing = cuda_missing(p) or (jax_gpu_missing() if not p.dry else None)
    if missing:
        rec.skip("jax_function part", missing)
        return rec.result()
    dev = Device(p)
    torch.manual_seed(0)
    with rec.step("jax_function tiny Linear(8, 8)"):
        linear, how = torch_backbone(torch.nn.Linear(8, 8), dev)
        x = torch.randn(4, 8, generator=torch.Generator().manual_seed(1)).to(dev.torch)
        _case(rec, dev, p, "tiny Linear(8,8) batch 4", linear, x, tiny=True)
    with rec.step(f"jax_function {p.vit.label}"):
        spec = specs.TimmSpec(p.vit.name, pretrained=False, model_kwargs=p.vit.kwargs)
        vit, how = torch_backbone(None, dev, spec=spec)
        rec.note(f"jax_function: ViT adapter made with {how}")
        shape = (p.batch, 3, p.vit.image, p.vit.image)
        x = torch.randn(shape, generator=torch.Generator().manual_seed(1)).to(dev.torch)
        _case(rec, dev, p, f"{p.vit.label} batch {p.batch}", vit, x, tiny=False)
    return rec.result()
