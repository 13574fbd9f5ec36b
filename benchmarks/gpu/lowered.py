"""Part 5: the native JAX runtime on the GPU: ``adapters.build(spec, runtime="jax", device=)``.

For ViT-S/16 and ResNet-18 (timm, random weights, headless), each built with
``adapters.build(spec, runtime="jax", device="cuda", example_input=)``: the torch source moves the params to the
GPU once, the JAX params share that memory, and the build's own first-build check has compared
the lowering with torch on the GPU at full float32 (TF32 off on both sides, within 1e-4; the
build raises ``ParityError`` otherwise). Then:

* checks: every param is on the JAX GPU device and at the address of the torch module's CUDA
  tensor; the same before and after the timed calls (nothing re-placed per call); a jitted
  call whose input is already on the GPU runs under ``jax.transfer_guard("disallow")`` (no
  implicit host<->device copy per call); the output equals the torch module's on the GPU
  within ``TF32_TOL x max|torch output|`` (both at TF32, as timed);
* rows at batch 1 and 16: ``jax.jit(forward)`` (``block_until_ready``) vs torch eager
  (``module(x)`` under ``no_grad``, then ``torch.cuda.synchronize``), interleaved, both with
  TF32 allowed (torch: ``set_float32_matmul_precision("high")`` and cuDNN TF32; XLA: its
  default). Each row also carries the build time, the jit compile time at that batch (the
  first call), torch eager at its own default (float32 matmuls) and the load average.

Then the precision rows (`precision_rows`), after every model: the first model built with
``runtime="jax"`` at ``bf16-true`` and ``16-true`` (low params and activations, float32
accumulation; each build's own first-build check compares it with torch at the same setting),
``jax.jit`` of its forward at the largest batch against the ``32-true`` build's, interleaved,
TF32 allowed as above.

A model or setting whose build and checks leave too little of the part's time for the next
skips the next one with the reason, so that the rows already measured come back.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.gpu import precision_rows
from benchmarks.gpu._common import (
    Device,
    Model,
    Profile,
    Recorder,
    cuda_missing,
    jax_gpu_missing,
)

#: XLA's and torch's TF32 (10-bit mantissa) against each other, relative to max|torch output|
TF32_TOL = 2e-2
#: the share of the part's timeout one more model may start in (a model takes about as long
#: as the one before it; the rest is the process's start-up, which this part does not see)
START_SHARE = 0.8


def _pointers(params: dict[str, Any]) -> dict[str, int]:
    return {k: v.unsafe_buffer_pointer() for k, v in params.items()}


def _placed(backbone: Any, jdev: Any, before: dict[str, int]) -> tuple[bool, dict]:
    """Every param on ``jdev`` at the torch module's address, and where it was at build time."""
    state = backbone.module.state_dict()
    elsewhere = sorted(k for k, v in backbone.params.items() if v.devices() != {jdev})
    not_shared = sorted(
        k
        for k, t in state.items()
        if t.dtype.is_floating_point and backbone.params[k].unsafe_buffer_pointer() != t.data_ptr()
    )
    moved = sorted(k for k, ptr in _pointers(backbone.params).items() if before.get(k) != ptr)
    details = {
        "params": len(backbone.params),
        "torch_devices": sorted({str(t.device) for t in state.values()}),
        "off_device": elsewhere[:5],
        "not_sharing_torch_memory": not_shared[:5],
        "moved_since_build": moved[:5],
    }
    return not (elsewhere or not_shared or moved), details


class _Tf32:
    """TF32 allowed in torch for the block (matmuls and cuDNN), restored after; XLA's default
    on NVIDIA GPUs already allows it (cuDNN's flag through `cudnn_tf32`, which works after
    torch's test utilities froze plain assignment)."""

    def __enter__(self) -> None:
        import torch

        from adapters._src.runtimes.jax.device import cudnn_tf32

        self._saved = torch.get_float32_matmul_precision()
        self._cudnn = cudnn_tf32(True)
        self._cudnn.__enter__()
        torch.set_float32_matmul_precision("high")

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.set_float32_matmul_precision(self._saved)
        self._cudnn.__exit__(*exc)


def _build(dev: Device, m: Model, precision: str = "32-true") -> Any:
    """``m`` built with ``runtime="jax"`` on ``dev`` at ``precision`` (random, seeded)."""
    import torch

    import adapters
    import specs

    spec = specs.TimmSpec(m.name, pretrained=False, model_kwargs=m.kwargs)
    torch.manual_seed(0)
    # the example is on the CPU: the runtime traces it where the module is (ResNet declares
    # 224 px, the dry run's is 32 px: an example sets the size the lowering is for)
    example = torch.zeros(1, 3, m.image, m.image)
    return adapters.build(
        spec, runtime="jax", device=str(dev.torch), example_input=example, precision=precision
    )


def _model(rec: Recorder, dev: Device, p: Profile, m: Model) -> tuple[Any, Any]:
    import jax

    start = time.perf_counter()
    backbone = _build(dev, m)
    build_s = time.perf_counter() - start
    rec.note(
        f"lowered {m.label}: built in {build_s:.1f} s (cache {backbone.info['cache']}, device "
        f"{backbone.info['device']}); its first-build check at full float32 passed"
    )
    jdev = dev.jax_device()
    before = _pointers(backbone.params)
    rec.check(
        f"lowered {m.label}: params on {jdev} sharing the torch module's memory",
        lambda: _placed(backbone, jdev, before),
    )
    f = jax.jit(backbone.forward)
    for batch in p.lowered_batches:
        _batch(rec, dev, p, m, backbone, f, batch, build_s)
    rec.check(
        f"lowered {m.label}: params unmoved after the timed calls",
        lambda: _placed(backbone, jdev, before),
    )
    return backbone, f


def _jitted_call(dev: Device, m: Model, backbone: Any, f: Any, batch: int) -> Any:
    """A thunk: ``f(params, x)`` on a fixed input on ``dev``, until ready."""
    import torch

    import interop

    x = torch.randn(batch, 3, m.image, m.image, generator=torch.Generator().manual_seed(batch))
    xj = interop.to_jax(x.to(dev.torch))
    return lambda: f(backbone.params, xj).block_until_ready()


def _precisions(rec: Recorder, dev: Device, p: Profile, base: tuple[Model, Any, Any],
                left: Any) -> None:  # fmt: skip
    """The precision rows of the first model (``base``: it, its 32-true build, jitted)."""
    import jax

    m, backbone, f = base
    batch = p.lowered_batches[-1]
    calls = {precision_rows.BASE: _jitted_call(dev, m, backbone, f, batch)}
    for precision in precision_rows.LOW["jax"]:
        why = left()
        if why:
            rec.skip(f"lowered {m.label} {precision}", why)
            continue
        with rec.step(f"lowered {m.label} {precision}"):
            low = _build(dev, m, precision)
            calls[precision] = _jitted_call(dev, m, low, jax.jit(low.forward), batch)
            calls[precision]()  # compiled outside the timing
    with _Tf32():
        precision_rows.rows(
            rec, "lowered", "jax", f"{dev.kind} {m.label} batch {batch}", calls,
            repeats=max(3, p.repeats // 2), number=10 if dev.cuda else 1, tf32="allowed",
        )  # fmt: skip


def _batch(
    rec: Recorder,
    dev: Device,
    p: Profile,
    m: Model,
    backbone: Any,
    f: Any,
    batch: int,
    build_s: float,
) -> None:
    """The checks and the row of one batch size (``f`` is ``jax.jit(backbone.forward)``)."""
    import jax
    import numpy as np
    import torch

    import interop
    from benchmarks._timing import interleaved, load_average, ratio_row

    case = f"lowered {dev.kind} {m.label} batch {batch}"
    gen = torch.Generator().manual_seed(batch)
    x = torch.randn(batch, 3, m.image, m.image, generator=gen).to(dev.torch)
    xj = interop.to_jax(x)  # shares x's device memory
    module = backbone.module

    def jax_call() -> Any:
        return f(backbone.params, xj).block_until_ready()

    def torch_call() -> Any:
        with torch.no_grad():
            y = module(x)
        dev.sync()
        return y

    def no_transfer() -> bool:
        with jax.transfer_guard("disallow"):
            jax_call()
        return True

    def parity() -> tuple[bool, dict]:
        got = np.asarray(jax_call(), dtype=np.float64)
        want = torch_call().double().cpu().numpy()
        diff, scale = float(np.abs(got - want).max()), float(np.abs(want).max())
        tol = TF32_TOL * scale
        return diff <= tol, {"max_abs": diff, "tolerance": tol, "out_scale": scale}

    number = 10 if dev.cuda else 1
    with _Tf32():
        t0 = time.perf_counter()
        jax_call()  # trace, lower, compile (XLA's persistent cache may serve it) and run
        compile_s = time.perf_counter() - t0
        rec.check(f"{case}: no host<->device transfer per jitted call", no_transfer)
        rec.check(f"{case}: output equals torch within {TF32_TOL:g} x max|y|", parity)
        timings = interleaved(
            {"jax.jit": jax_call, "torch eager": torch_call},
            repeats=max(3, p.repeats // 2),
            number=number,
            warmup=2,
        )
    # torch at its own default (float32 matmuls, cuDNN TF32): the user's out-of-box call
    default = interleaved({"torch default": torch_call}, repeats=3, number=number)
    rec.row(
        case,
        lambda: ratio_row(
            case,
            timings,
            "jax.jit",
            "torch eager",
            compile_s=compile_s,
            build_s=build_s,
            torch_default_s=default["torch default"]["median_s"],
            precision="tf32 both",
            loadavg=load_average(),
        ),
    )


def run(p: Profile) -> dict[str, Any]:
    """Checks and rows for ``p.lowered_models`` (see the module docstring)."""
    from benchmarks.gpu._runner import TIMEOUTS

    rec = Recorder()
    missing = cuda_missing(p) or (jax_gpu_missing() if not p.dry else None)
    if missing:
        rec.skip("lowered part", missing)
        return rec.result()
    dev = Device(p)
    timeout = TIMEOUTS["lowered"]
    start = time.perf_counter()
    last = [0.0]

    def left() -> str | None:
        """Why the next build would not fit the part's time (None: it fits)."""
        spent = time.perf_counter() - start
        if p.dry or spent + last[0] <= START_SHARE * timeout:
            return None
        return (
            f"{spent:.0f} s of the part's {timeout:.0f} s were spent and the last build "
            f"took {last[0]:.0f} s; give the part more (TIMEOUTS in benchmarks/gpu/_runner.py)"
        )

    base = None
    for m in p.lowered_models:
        spent, why = time.perf_counter() - start, left()
        if why:
            rec.skip(f"lowered {m.label}", why)
            continue
        with rec.step(f"lowered {m.label}"):
            built = _model(rec, dev, p, m)
            base = base or (m, *built)
        last[0] = time.perf_counter() - start - spent
    if base is not None:
        _precisions(rec, dev, p, base, left)
    return rec.result()
