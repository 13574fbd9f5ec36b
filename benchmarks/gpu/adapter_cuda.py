"""Part 4: adapter forward vs the raw module call on CUDA (ViT-S/16, batch 16).

The same module and input, interleaved; every timed thunk ends with
``torch.cuda.synchronize`` so the GPU work is inside the timing:

* ``adapter(x)``: the adapter's own params (identity fast path: the module is called);
* ``forward(copy, x)``: a different params dict with equal values (``functional_call``);
* baseline ``module(x)`` under ``torch.no_grad``.

Goal: ratio <= 1.02 (adapter overhead at most 2% of the raw call).

Then the precision rows (`precision_rows`): ``adapters.build(spec, device=, precision=)`` at
``bf16-true`` and ``16-true`` (weights and compute in the low dtype), ``adapter(x)`` against
the ``32-true`` adapter's, interleaved.
"""

from __future__ import annotations

from typing import Any

from benchmarks.gpu import precision_rows
from benchmarks.gpu._common import Device, Profile, Recorder, cuda_missing
from benchmarks.gpu.jax_gpu import torch_backbone


def run(p: Profile) -> dict[str, Any]:
    """Parity checks and two rows for ``p.vit`` (see the module docstring)."""
    import torch

    import specs
    from benchmarks._timing import interleaved, ratio_row

    rec = Recorder()
    missing = cuda_missing(p)
    if missing:
        rec.skip("adapter part", missing)
        return rec.result()
    dev = Device(p)
    m = p.vit
    case = f"{m.label} batch {p.batch}"
    with rec.step(f"adapter {case}"):
        torch.manual_seed(0)
        spec = specs.TimmSpec(m.name, pretrained=False, model_kwargs=m.kwargs)
        backbone, how = torch_backbone(None, dev, spec=spec)
        rec.note(f"adapter: built with {how}")
        module = backbone.module
        x = torch.randn(p.batch, 3, m.image, m.image, generator=torch.Generator().manual_seed(1))
        x = x.to(dev.torch)
        copied = {k: v.clone() for k, v in backbone.params.items()}

        def raw() -> Any:
            with torch.no_grad():
                y = module(x)
            dev.sync()
            return y

        def own() -> Any:
            y = backbone(x)
            dev.sync()
            return y

        def swapped() -> Any:
            y = backbone.forward(copied, x)
            dev.sync()
            return y

        def on_device() -> tuple[bool, dict]:
            devices = {str(t.device) for t in backbone.params.values()}
            return devices == {str(dev.torch)}, {"param_devices": sorted(devices)}

        def parity() -> tuple[bool, dict]:
            want = raw()
            a, b = own(), swapped()
            same = torch.equal(a, want)
            diff = float((b - want).abs().max())
            return same and diff <= 1e-5, {"own_equal": same, "swapped_max_abs": diff}

        rec.check(f"adapter {case}: params on {dev.torch}", on_device)
        rec.check(f"adapter {case}: adapter(x) == module(x); forward(copy, x) within 1e-5", parity)
        timings: dict[str, Any] = {}

        def measure() -> dict:
            timings.update(
                interleaved(
                    {"raw module(x)": raw, "adapter(x)": own, "forward(copy, x)": swapped},
                    repeats=p.repeats,
                    number=5 if dev.cuda else 1,
                    warmup=3 if dev.cuda else 1,
                )
            )
            return ratio_row(
                f"adapter {dev.kind} {case}", timings, "adapter(x)", "raw module(x)", goal=1.02
            )

        rec.row(f"adapter {dev.kind} {case}", measure)
        if timings:
            rec.row(
                f"adapter {dev.kind} {case} swapped params",
                lambda: ratio_row(
                    f"adapter {dev.kind} {case} swapped params",
                    timings,
                    "forward(copy, x)",
                    "raw module(x)",
                    goal=1.02,
                ),
            )
        calls = {precision_rows.BASE: own}
        for precision in precision_rows.LOW["torch"]:
            with rec.step(f"adapter {case} {precision}"):
                calls[precision] = _synced(_at(spec, dev, precision), x, dev)
        precision_rows.rows(
            rec, "adapter", "torch", f"{dev.kind} {case}", calls,
            repeats=p.repeats, number=5 if dev.cuda else 1,
        )  # fmt: skip
    return rec.result()


def _at(spec: Any, dev: Device, precision: str) -> Any:
    """The torch adapter of ``spec`` on ``dev`` at ``precision`` (seeded as the 32-true one)."""
    import torch

    import adapters

    torch.manual_seed(0)
    return adapters.build(spec, device=str(dev.torch), precision=precision)


def _synced(backbone: Any, x: Any, dev: Device) -> Any:
    """A thunk: ``backbone(x)``, then the device synchronised."""

    def call() -> Any:
        y = backbone(x)
        dev.sync()
        return y

    return call
