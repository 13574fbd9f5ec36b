"""Part 1: the DLPack bridge on CUDA: pointer equality, stream safety, conversion times.

* **pointers** over a dtype table: torch<->jax share one buffer (``copy=False``), ``copy=True``
  makes a new one, ONNX Runtime shares the device buffer when it has the CUDA provider and
  otherwise ``copy=False`` raises ``BufferError`` while ``copy=None`` copies to the host;
  layouts (transposed, strided) share or copy as ``interop.copy_reason`` says.
* **stream safety**: a producer writes a buffer on a non-default stream after spinning for
  ~0.1 s (torch: ``torch.cuda._sleep`` then a large matmul; JAX: a chain of matmuls), and the
  consumer converts and reads it at once. Each check has a *control* that reads the same
  buffer without the synchronisation (DLPack ``stream=-1``, or a copy on an unrelated
  stream): the control seeing stale data proves the check can fail.
* **times** against size, 1 KB .. 256 MB, zero-copy vs ``copy=True`` (interleaved, each
  thunk synchronised).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from benchmarks.gpu._common import (
    Device,
    Profile,
    Recorder,
    cuda_missing,
    jax_gpu_missing,
    ort_cuda_missing,
)

DTYPES = ("float32", "float16", "bfloat16", "int32", "int8", "uint8", "bool")
SHAPE = (256, 128)


def _source(dtype_name: str, dev: Device) -> Any:
    """A ``SHAPE`` torch tensor of ``dtype_name`` with varied values, on ``dev``."""
    import torch

    g = torch.Generator().manual_seed(0)
    dtype = getattr(torch, dtype_name)
    if dtype == torch.bool:
        t = torch.rand(SHAPE, generator=g) > 0.5
    elif dtype.is_floating_point:
        t = torch.randn(SHAPE, generator=g).to(dtype)
    else:
        low = 0 if dtype == torch.uint8 else -100
        t = torch.randint(low, 100, SHAPE, generator=g, dtype=dtype)
    return t.to(dev.torch)


def _host(a: Any) -> Any:
    """A CPU torch copy of any array, for value comparisons."""
    import interop

    return interop.to_torch(interop.to_numpy(a, copy=True))


def _same(a: Any, b: Any) -> bool:
    import torch

    return torch.equal(_host(a), _host(b))


def _raises_buffer_error(fn: Callable[[], Any]) -> bool:
    try:
        fn()
    except BufferError:
        return True
    return False


def _pointer_checks(rec: Recorder, dev: Device, ort_on_device: bool) -> None:
    import jax

    import interop

    jdev = dev.jax_device()
    for name in DTYPES:
        t = _source(name, dev)
        jn = jax.device_put(interop.to_numpy(t, copy=True), jdev)  # a JAX-allocated buffer

        def torch_to_jax(t: Any = t) -> tuple[bool, dict]:
            j = interop.to_jax(t, copy=False)
            ptr = interop.data_ptr(j)
            return ptr == t.data_ptr() and _same(j, t), {"jax_device": str(j.devices())}

        def jax_to_torch(jn: Any = jn) -> tuple[bool, dict]:
            back = interop.to_torch(jn, copy=False)
            ok = back.data_ptr() == interop.data_ptr(jn) and back.device == dev.torch
            return ok and _same(back, jn), {"torch_device": str(back.device)}

        def copies(t: Any = t, jn: Any = jn) -> bool:
            j = interop.to_jax(t, copy=True)
            back = interop.to_torch(jn, copy=True)
            new = interop.data_ptr(j) != t.data_ptr() and back.data_ptr() != interop.data_ptr(jn)
            return new and _same(j, t) and _same(back, jn)

        rec.check(f"{name}: torch->jax copy=False shares the buffer", torch_to_jax)
        rec.check(f"{name}: jax->torch copy=False shares the buffer", jax_to_torch)
        rec.check(f"{name}: copy=True gives new buffers, same values (both ways)", copies)
        for src_kind, src in (("torch", t), ("jax", jn)):
            if ort_on_device:

                def to_ort(src: Any = src) -> tuple[bool, dict]:
                    ov = interop.to_ortvalue(src, copy=False)
                    ok = ov.data_ptr() == interop.data_ptr(src) and _same(ov, src)
                    return ok, {"ort_device": ov.device_name()}

                rec.check(f"{name}: {src_kind}->ort copy=False shares the buffer", to_ort)
            else:

                def to_ort_host(src: Any = src) -> tuple[bool, dict]:
                    refused = _raises_buffer_error(lambda: interop.to_ortvalue(src, copy=False))
                    ov = interop.to_ortvalue(src)
                    ok = refused and ov.device_name().lower() == "cpu" and _same(ov, src)
                    return ok, {"copy_false_raised": refused, "ort_device": ov.device_name()}

                rec.check(
                    f"{name}: {src_kind}->ort without CUDA EP: copy=False raises, copy=None "
                    "copies to the host",
                    to_ort_host,
                )
        if ort_on_device:

            def from_ort(t: Any = t) -> bool:
                ov = interop.to_ortvalue(t, copy=False)
                a = interop.to_torch(ov, copy=False)
                b = interop.to_jax(ov, copy=False)
                return a.data_ptr() == ov.data_ptr() == interop.data_ptr(b) and _same(b, t)

            rec.check(f"{name}: ort->torch and ort->jax copy=False share the buffer", from_ort)


def _layout_checks(rec: Recorder, dev: Device) -> None:
    import interop

    t = _source("float32", dev)

    def transposed() -> tuple[bool, dict]:
        view = t.T
        reason = interop.copy_reason(view, "jax")
        j = interop.to_jax(view)
        shared = interop.data_ptr(j) == view.data_ptr()
        return _same(j, view) and shared == (reason is None), {
            "copy_reason": reason,
            "shared": shared,
        }

    def strided() -> tuple[bool, dict]:
        view = t[:, ::2]
        refused = _raises_buffer_error(lambda: interop.to_jax(view, copy=False))
        return refused and _same(interop.to_jax(view), view), {"copy_false_raised": refused}

    def strided_ort() -> tuple[bool, dict]:
        view = t.T
        refused = _raises_buffer_error(lambda: interop.to_ortvalue(view, copy=False))
        return refused and _same(interop.to_ortvalue(view), view), {"copy_false_raised": refused}

    rec.check("float32 transposed: torch->jax shares iff copy_reason is None", transposed)
    rec.check("float32 strided [:, ::2]: torch->jax copy=False raises, copy=None copies", strided)
    rec.check("float32 transposed: torch->ort copy=False raises, copy=None copies", strided_ort)
    if dev.cuda:

        def mismatch() -> bool:
            refused = _raises_buffer_error(lambda: interop.to_numpy(t, copy=False))
            return refused and _same(interop.to_numpy(t), t.cpu())

        rec.check("cuda->numpy: copy=False raises BufferError, copy=None copies", mismatch)


# -- stream safety ----------------------------------------------------------------------------


class _NoSync:
    """The same buffer through DLPack, ignoring the consumer's stream (``stream=-1``)."""

    def __init__(self, t: Any) -> None:
        self.t = t

    def __dlpack__(self, stream: Any = None, **kwargs: Any) -> Any:
        return self.t.__dlpack__(stream=-1, **kwargs)

    def __dlpack_device__(self) -> Any:
        return self.t.__dlpack_device__()


def _extremes(y: Any) -> tuple[float, float]:
    """(min, max) of any array, computed where it lives (JAX on its stream, torch on its)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    if isinstance(y, jax.Array):
        return float(jnp.min(y)), float(jnp.max(y))
    if hasattr(y, "min") and hasattr(y, "device") and not isinstance(y, np.ndarray):
        return float(y.min()), float(y.max())
    a = np.asarray(y.numpy() if hasattr(y, "numpy") else y, dtype=np.float32)
    return float(a.min()), float(a.max())


def _torch_produced(dev: Device, p: Profile, consume: Callable[[Any], Any]) -> tuple[float, float]:
    """Write ``out = ones @ ones`` (every entry ``n``) on a side stream after a spin; return
    the extremes the consumer sees when it converts ``out`` inside that stream's context."""
    import torch

    n = p.stream_n
    a = torch.ones(n, n, device=dev.torch)
    out = torch.zeros(n, n, device=dev.torch)
    dev.sync()
    with dev.side_stream():
        dev.spin(p.sleep_cycles)
        torch.matmul(a, a, out=out)
        seen = _extremes(consume(out))
    dev.sync()
    return seen


def _stale_host_read(dev: Device, out: Any) -> Any:
    """The control for host consumers: a copy on an unrelated stream, synchronised alone."""
    import torch

    host = torch.empty(out.shape, dtype=out.dtype, pin_memory=True)
    other = torch.cuda.Stream(dev.torch)
    with torch.cuda.stream(other):
        host.copy_(out, non_blocking=True)
    other.synchronize()
    return host


def _stream_checks(rec: Recorder, dev: Device, p: Profile, ort_on_device: bool) -> None:
    import jax

    import interop

    n = float(p.stream_n)
    consumers: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any] | None]] = {
        "jax": (interop.to_jax, lambda out: jax.dlpack.from_dlpack(_NoSync(out))),
        "numpy": (interop.to_numpy, lambda out: _stale_host_read(dev, out)),
        "ort": (
            interop.to_ortvalue,
            None if ort_on_device else (lambda out: _stale_host_read(dev, out)),
        ),
    }
    for name, (convert, control) in consumers.items():
        details: dict[str, Any] = {}
        if dev.cuda and control is not None:
            try:
                lo, hi = _torch_produced(dev, p, control)
                details["control_saw_stale"] = not (lo == hi == n)
            except Exception as err:
                details["control_error"] = f"{type(err).__name__}: {err}"[:200]
        elif dev.cuda:
            details["control"] = "none for a device OrtValue"

        def check(convert: Callable[[Any], Any] = convert, details: dict = details) -> tuple:
            lo, hi = _torch_produced(dev, p, convert)
            return lo == hi == n, {"seen_min": lo, "seen_max": hi, "expected": n, **details}

        rec.check(f"stream: torch side-stream matmul -> {name} reads finished data", check)
        if dev.cuda and details.get("control_saw_stale") is False:
            rec.note(
                f"stream check '{name}': the unsynchronised control also saw finished data, so "
                "this run could not have caught a missing sync; raise sleep_cycles"
            )

    runs = iter(range(2, 1_000))

    def jax_produced(sync: bool) -> tuple[tuple[float, float], float]:
        import jax.numpy as jnp
        import torch

        # every run expects a different value, so a stale buffer left by an earlier run
        # (JAX reuses freed memory) cannot pass for this run's result
        scale = float(next(runs))
        jdev = dev.jax_device()
        m = p.stream_n
        a = jax.device_put(jnp.ones((m, m), jnp.float32), jdev).block_until_ready()
        y = _matmul_chain(a, jnp.float32(scale))  # dispatched, still running
        with dev.side_stream():
            if sync:
                t = interop.to_torch(y)
            else:
                other = torch.cuda.Stream(dev.torch)  # JAX orders its write on *this* stream
                t = torch.from_dlpack(_ForStream(y, other.cuda_stream))
            seen = _extremes(t)
        y.block_until_ready()
        dev.sync()
        return seen, m * scale

    details: dict[str, Any] = {}
    if dev.cuda:
        try:
            (lo, hi), want = jax_produced(sync=False)
            details["control_saw_stale"] = not (lo == hi == want)
        except Exception as err:
            details["control_error"] = f"{type(err).__name__}: {err}"[:200]

    def jax_to_torch() -> tuple:
        (lo, hi), want = jax_produced(sync=True)
        return lo == hi == want, {"seen_min": lo, "seen_max": hi, "expected": want, **details}

    rec.check("stream: jax matmul chain -> torch side stream reads finished data", jax_to_torch)
    if dev.cuda and details.get("control_saw_stale") is False:
        rec.note(
            "stream check 'jax->torch': the control synchronised with another stream also saw "
            "finished data, so this run could not have caught a missing sync"
        )


class _ForStream:
    """A JAX array through DLPack, synchronised with a given stream instead of the consumer's."""

    def __init__(self, y: Any, stream: int) -> None:
        self.y, self.stream = y, stream

    def __dlpack__(self, stream: Any = None, **kwargs: Any) -> Any:
        return self.y.__dlpack__(stream=self.stream, **kwargs)

    def __dlpack_device__(self) -> Any:
        return self.y.__dlpack_device__()


@functools.cache
def _chain(steps: int) -> Any:
    import jax

    @jax.jit
    def chain(a: Any, scale: Any) -> Any:
        y = a
        for _ in range(steps):
            y = (y @ a) / a.shape[0]  # ones stay ones, exactly (also in TF32)
        return (y @ a) * scale

    return chain


def _matmul_chain(a: Any, scale: Any, steps: int = 24) -> Any:
    """All-ones ``a`` (n, n) -> every entry ``n * scale``, after ``steps`` + 1 matmuls."""
    return _chain(steps)(a, scale)


# -- times ------------------------------------------------------------------------------------


def _sweep_row(
    case: str,
    fns: dict[str, Callable[[], Any]],
    ours: str,
    baseline: str,
    p: Profile,
    nbytes: int,
    **extra: Any,
) -> dict[str, Any]:
    from benchmarks._timing import interleaved, ratio_row

    small = nbytes < 2**22
    timings = interleaved(
        fns,
        repeats=p.repeats if small else max(3, p.repeats // 3),
        number=20 if small else 2,
    )
    return ratio_row(case, timings, ours, baseline, nbytes=nbytes, **extra)


def _timings(rec: Recorder, dev: Device, p: Profile, ort_on_device: bool) -> None:
    import jax
    import torch

    import interop

    jdev = dev.jax_device()

    def done(y: Any) -> None:
        if isinstance(y, jax.Array):
            y.block_until_ready()
        dev.sync()

    def pair(x: Any, fn: Callable[..., Any]) -> dict[str, Callable[[], Any]]:
        return {
            "zero_copy": lambda: done(fn(x, copy=False)),
            "copy": lambda: done(fn(x, copy=True)),
        }

    for nbytes in p.sizes:
        t = torch.ones(nbytes // 4, device=dev.torch)
        j = jax.device_put(interop.to_numpy(t, copy=True), jdev)
        cases: dict[str, tuple[Any, Callable[..., Any]]] = {
            "torch->jax": (t, interop.to_jax),
            "jax->torch": (j, interop.to_torch),
        }
        if ort_on_device:
            cases["torch->ort"] = (t, interop.to_ortvalue)
        for direction, (x, fn) in cases.items():
            case = f"{dev.kind} {direction} {nbytes // 1024} KB"
            rec.row(
                case,
                functools.partial(
                    _sweep_row,
                    case,
                    pair(x, fn),
                    "zero_copy",
                    "copy",
                    p,
                    nbytes,
                    direction=direction,
                ),
            )
        if dev.cuda:
            case = f"cuda->host {nbytes // 1024} KB"
            fns = {
                "interop.to_numpy": functools.partial(interop.to_numpy, t),
                "t.cpu().numpy()": functools.partial(lambda t: t.cpu().numpy(), t),
            }
            rec.row(
                case,
                functools.partial(
                    _sweep_row,
                    case,
                    fns,
                    "interop.to_numpy",
                    "t.cpu().numpy()",
                    p,
                    nbytes,
                    direction="cuda->numpy",
                ),
            )
        del t, j
    if not ort_on_device:
        rec.skip("torch->ort timings on the device", ort_cuda_missing() or "")


def run(p: Profile) -> dict[str, Any]:
    """Every bridge check and timing row for ``p`` (see the module docstring)."""
    rec = Recorder()
    missing = cuda_missing(p) or (jax_gpu_missing() if not p.dry else None)
    if missing:
        rec.skip("bridge part", missing)
        return rec.result()
    dev = Device(p)
    ort_on_device = not dev.cuda or ort_cuda_missing() is None
    with rec.step("pointer table"):
        _pointer_checks(rec, dev, ort_on_device)
    with rec.step("layouts"):
        _layout_checks(rec, dev)
    with rec.step("stream safety"):
        _stream_checks(rec, dev, p, ort_on_device)
    if not dev.cuda:
        rec.skip("stream controls", "no streams on the CPU: the checks run, the controls cannot")
    with rec.step("timings"):
        _timings(rec, dev, p, ort_on_device)
    return rec.result()
