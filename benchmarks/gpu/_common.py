"""What every GPU part shares: the size profile, the device helper and the result recorder.

A part is a function ``run(profile) -> dict`` that never raises for a failed check: each
check, row and skip is recorded (``Recorder``) so that one broken step leaves the others'
figures in the report. The runner (``benchmarks.gpu._runner``) isolates whole parts.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple


class Model(NamedTuple):
    """A timm backbone built with random weights: ``timm.create_model(name, **kwargs)``."""

    label: str
    name: str
    kwargs: dict[str, Any]
    image: int  # input height = width


class Profile(NamedTuple):
    """Sizes for one run: the real ones for the H200, tiny ones for ``--dry-run`` on a CPU.

    Attributes:
        device: ``"cuda"`` (the real run) or ``"cpu"`` (dry run: the same logic, no GPU).
        dry: True for the CPU dry run.
        sizes: array sizes in bytes for the conversion-time sweep.
        onnx_models: the backbones of the ONNX part.
        vit: the backbone of the ``jax_function`` and adapter parts.
        lowered_models: the backbones of the ``lowered`` part (``runtime="jax"``), in order.
        lowered_batches: the batch sizes the ``lowered`` part times.
        batch: batch size of every backbone input ``(batch, 3, image, image)``.
        repeats: interleaved rounds per timed case (``benchmarks._timing.interleaved``).
        stream_n: side of the square matmul that writes a buffer in the stream checks.
        sleep_cycles: GPU clock cycles the producer stream spins before it writes
            (``torch.cuda._sleep``; about 0.1 s at the H200's 1.98 GHz).
    """

    device: str
    dry: bool
    sizes: tuple[int, ...]
    onnx_models: tuple[Model, ...]
    vit: Model
    lowered_models: tuple[Model, ...]
    lowered_batches: tuple[int, ...]
    batch: int
    repeats: int
    stream_n: int
    sleep_cycles: int


_HEADLESS = {"num_classes": 0}
VIT_TINY = Model("ViT-tiny/16", "vit_tiny_patch16_224", _HEADLESS, 224)
VIT_SMALL = Model("ViT-S/16", "vit_small_patch16_224", _HEADLESS, 224)
#: one transformer block on 32x32 images: every code path of a ViT, in milliseconds on a CPU
VIT_DRY = Model(
    "ViT-tiny/16 1 block 32px",
    "vit_tiny_patch16_224",
    {**_HEADLESS, "img_size": 32, "depth": 1},
    32,
)
RESNET18 = Model("ResNet-18", "resnet18", _HEADLESS, 224)
RESNET18_DRY = Model("ResNet-18 32px", "resnet18", _HEADLESS, 32)

FULL = Profile(
    device="cuda",
    dry=False,
    sizes=(2**10, 2**14, 2**18, 2**22, 2**26, 2**28),  # 1 KB .. 256 MB
    onnx_models=(VIT_TINY, VIT_SMALL),
    vit=VIT_SMALL,
    lowered_models=(VIT_SMALL, RESNET18),
    lowered_batches=(1, 16),
    batch=16,
    repeats=15,
    stream_n=8192,
    sleep_cycles=200_000_000,
)
DRY = Profile(
    device="cpu",
    dry=True,
    sizes=(2**10, 2**16),
    onnx_models=(VIT_DRY,),
    vit=VIT_DRY,
    lowered_models=(VIT_DRY, RESNET18_DRY),
    lowered_batches=(1, 2),
    batch=2,
    repeats=2,
    stream_n=64,
    sleep_cycles=0,
)


def profile(dry: bool) -> Profile:
    """`DRY` or `FULL`."""
    return DRY if dry else FULL


def cuda_missing(p: Profile) -> str | None:
    """Why the real (CUDA) run cannot happen here, or None (also None for a dry run)."""
    if p.dry:
        return None
    import torch

    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only"
        return (
            f"torch {torch.__version__} ({build} build) sees no GPU; run with --dry-run to "
            "check the script's logic on the CPU"
        )
    return None


class Device:
    """The few device operations the parts need, as no-ops on the CPU (dry run)."""

    def __init__(self, p: Profile) -> None:
        import torch

        self.kind = p.device
        self.torch = torch.device("cuda", 0) if p.device == "cuda" else torch.device("cpu")

    @property
    def cuda(self) -> bool:
        return self.kind == "cuda"

    def sync(self) -> None:
        """Wait for every stream of the device (a timed thunk ends with this)."""
        if self.cuda:
            import torch

            torch.cuda.synchronize(self.torch)

    def side_stream(self) -> Any:
        """A context manager making a new non-default stream current (CPU: nothing)."""
        if not self.cuda:
            return contextlib.nullcontext()
        import torch

        return torch.cuda.stream(torch.cuda.Stream(self.torch))

    def spin(self, cycles: int) -> None:
        """Keep the current stream busy for ``cycles`` GPU clocks (CPU: nothing)."""
        if self.cuda and cycles:
            import torch

            torch.cuda._sleep(cycles)

    def jax_device(self) -> Any:
        """The JAX device matching this one; raises ``RuntimeError`` if JAX has no GPU."""
        import jax

        return jax.devices("gpu" if self.cuda else "cpu")[0]


def jax_gpu_missing() -> str | None:
    """Why JAX has no GPU backend here, or None."""
    import jax

    try:
        jax.devices("gpu")
    except RuntimeError as err:
        return (
            f"jax {jax.__version__} has no GPU backend ({str(err).splitlines()[0][:160]}); "
            "it needs a jax CUDA plugin matching the machine's CUDA (see benchmarks/gpu/README.md)"
        )
    return None


def ort_cuda_missing() -> str | None:
    """Why ONNX Runtime has no CUDA provider here, or None."""
    import onnxruntime as ort

    providers = ort.get_available_providers()
    if "CUDAExecutionProvider" in providers:
        return None
    return (
        f"onnxruntime {ort.__version__} has providers {providers}, no CUDAExecutionProvider: "
        "that needs onnxruntime-gpu built for this machine's CUDA (see benchmarks/gpu/README.md)"
    )


def error_text(err: BaseException) -> str:
    """``Type: first line`` of an exception, short enough for a table cell."""
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:400]}"


class Recorder:
    """Collects one part's checks, timing rows, skips and notes; never lets a step raise.

    ``result()`` is the part's JSON: ``{"checks": [{"name", "ok", ...}], "rows": [...],
    "skipped": [{"what", "why"}], "notes": [...]}``.
    """

    def __init__(self) -> None:
        self.checks: list[dict[str, Any]] = []
        self.rows: list[dict[str, Any]] = []
        self.skipped: list[dict[str, str]] = []
        self.notes: list[str] = []

    def check(self, name: str, fn: Callable[[], bool | tuple[bool, dict[str, Any]]]) -> bool:
        """Run ``fn`` (``ok`` or ``(ok, details)``); an exception is a failed check."""
        try:
            out = fn()
        except Exception as err:
            self.checks.append({"name": name, "ok": False, "error": error_text(err)})
            return False
        ok, details = out if isinstance(out, tuple) else (out, {})
        self.checks.append({"name": name, "ok": bool(ok), **details})
        return bool(ok)

    def row(self, case: str, fn: Callable[[], dict[str, Any]]) -> None:
        """Add the timing row ``fn()`` returns; an exception becomes a row with ``error``."""
        try:
            self.rows.append(fn())
        except Exception as err:
            self.rows.append({"case": case, "error": error_text(err)})

    def skip(self, what: str, why: str) -> None:
        self.skipped.append({"what": what, "why": why})

    def note(self, text: str) -> None:
        self.notes.append(text)

    @contextlib.contextmanager
    def step(self, what: str) -> Iterator[None]:
        """A block whose exception is recorded as a failed check named ``what``."""
        try:
            yield
        except Exception as err:
            self.checks.append(
                {
                    "name": what,
                    "ok": False,
                    "error": error_text(err),
                    "where": traceback.format_exc(limit=-3)[-1200:],
                }
            )

    def result(self) -> dict[str, Any]:
        return {
            "checks": self.checks,
            "rows": self.rows,
            "skipped": self.skipped,
            "notes": self.notes,
        }
