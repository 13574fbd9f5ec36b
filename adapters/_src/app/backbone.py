"""The backbone of a command: ``SPEC`` (a spec file, an ``.onnx`` model or a registry name)
-> spec record -> device -> built adapter (+ runtime), the preprocessing it takes (its own,
with the ``--image-size`` / ``--mean`` / ``--std`` flags on top), and a forward whose failure
on an input is one line naming that input's shape."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

import specs

from ..devices import device_kind
from ..preprocess import MAX_SIDE, Preprocess, PreprocessError
from ..registry import TIMM_PREFIX, closest_names, list_models, registry_spec
from .errors import CliError, EmbedError, ForwardError
from .parser import prog_name

SPEC_SUFFIXES = (".yaml", ".yml", ".json", ".onnx")


#: what a backbone raises on an input it cannot take: torch's shape checks (RuntimeError),
#: ONNX Runtime's input checks and NumPy / JAX (ValueError, TypeError), indexing (IndexError),
#: the backbone's own shape asserts (timm's ViT: "Input height (48) doesn't match model (32)")
FORWARD_ERRORS = (RuntimeError, ValueError, TypeError, IndexError, AssertionError)


def run_forward(adapter: Any, x: Any) -> Any:
    """``adapter.forward(adapter.params, x)``, its failure on ``x`` named with ``x``'s shape.

    Raises:
        ForwardError: the forward raised one of `FORWARD_ERRORS` (an ``AssertionError`` only
            when the backbone's code raised it: one raised by this project's code is re-raised).
    """
    try:
        return adapter.forward(adapter.params, x)
    except FORWARD_ERRORS as err:
        if isinstance(err, AssertionError) and _raised_in_own_code(err):
            raise
        lines = str(err).strip().splitlines()
        reason = f"{type(err).__name__}: {lines[0] if lines else ''}"[:300]
        raise ForwardError(tuple(int(d) for d in x.shape), reason) from err


def _raised_in_own_code(err: BaseException) -> bool:
    """Whether ``err`` was raised in this project's packages: an assert failing there is a bug
    of ours, which must surface as itself, never as advice about the input size."""
    import interop  # torch and JAX: imported here, where a forward has run already

    packages = (
        Path(__file__).parents[2],
        Path(specs.__file__).parent,
        Path(interop.__file__).parent,
    )
    own = tuple(str(p.resolve()) + os.sep for p in packages)  # adapters/, specs/, interop/
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return False
    return str(Path(tb.tb_frame.f_code.co_filename).resolve()).startswith(own)


def resolve_spec(arg: str, device: str | None = None) -> Any:
    """A spec file (ours, eva's, or an .onnx model) or a registry name -> a spec record.

    A bare ``.onnx`` file runs on ``device``'s kind (``cpu`` or ``cuda``; default ``cpu``).
    """
    path = Path(arg)
    if path.is_file():
        if path.suffix == ".onnx":
            kind = "cpu" if device is None else device_kind(device)
            return specs.OnnxSpec(path=str(path), device=kind)
        return specs.load(path)
    if path.suffix in SPEC_SUFFIXES or path.is_dir():
        raise CliError(
            f"SPEC: expected a spec file or a registry name, got {arg!r}, which is not a file; "
            f"check the path, or run '{prog_name()} list' for registry names"
        )
    check_registry_name(arg)
    return specs.RegistrySpec(model_name=arg)


def check_registry_name(name: str) -> None:
    """Raise `CliError` for a name neither the registry nor timm (as ``timm/<name>``) knows,
    naming the closest registry names, ``timm/<name>`` when timm has that architecture, and the
    ``list`` command.

    Raises:
        CliError: the name is unknown.
    """
    import timm

    bare = name.removeprefix(TIMM_PREFIX)
    if name in list_models(include_timm=False) or (
        name.startswith(TIMM_PREFIX) and timm.is_model(bare)
    ):
        return
    close = closest_names(name)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise CliError(
        f"SPEC: unknown registry name {name!r} (and not a file); {hint}run '{prog_name()} list' "
        "for the project's names, or a spec file path"
    )


def _is_onnx(spec: Any) -> bool:
    if isinstance(spec, specs.RegistrySpec):
        try:
            spec = registry_spec(spec.model_name, spec.model_kwargs)
        except (ValueError, LookupError):
            return False  # build reports the unknown name
    return isinstance(spec, specs.OnnxSpec)


def choose_device(spec: Any, runtime: str, device: str | None) -> str | None:
    """The device to build on: ``--device`` if given; else None (the spec decides) for ONNX
    models and the ONNX Runtime fast path, and for torch and Flax ``cuda`` when torch sees a
    GPU, else ``cpu``."""
    if device is not None:
        return device
    if runtime not in ("torch", "auto") or _is_onnx(spec):
        return None
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def build_backbone(
    arg: Any,
    runtime: str,
    image_size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    seed: int | None = None,
    device: str | None = None,
    say: Callable[[str], None] | None = None,
    precision: str | None = None,
    batch_size: int | None = None,
) -> tuple[Any, Any]:
    """Build the backbone named by ``arg`` (what `resolve_spec` takes, or a spec record) on
    ``device`` (see `choose_device`); returns it with its resolved `Preprocess`. ``seed``
    replaces the spec's own seed of random weights (None: the spec's, default 0), and
    ``precision`` its precision (None: the spec's).

    With ``runtime="onnxruntime"``, ``"jax"`` or ``"auto"`` the torch backbone is built first
    to learn its input (size, channels), which is the example the ONNX export (or the JAX
    lowering) traces; that backbone is then served. ``"auto"`` serves it with the fastest
    runtime that passes its check, timed on a batch of ``batch_size`` (see
    ``adapters/_src/runtimes/auto/``). ``say`` (the CLI: print) is told when that conversion
    starts and how it went (a first one takes a while and is cached).

    Raises:
        ForwardError: with a runtime other than torch, the backbone cannot take the example
            input (checked with one forward before the conversion traces it).
    """
    import torch

    from ..build import build

    spec = resolve_spec(arg, device) if isinstance(arg, str) else arg
    device = choose_device(spec, runtime, device)
    if runtime not in ("torch", "auto") and device is not None and device_kind(device) != "cpu":
        raise CliError(
            f"--device: --runtime {runtime} serves the backbone on the CPU, got --device "
            f"{device}; drop --device, or use --runtime torch to run on {device}"
        )
    backbone = build(spec, device=device, seed=seed, precision=precision)
    pre = resolve_preprocess(backbone, image_size=image_size, mean=mean, std=std)
    if runtime != "torch":
        options = {} if runtime != "auto" or batch_size is None else {"batch_size": batch_size}
        example = torch.zeros(1, pre.channels, *pre.size)
        backbone = _convert(backbone, runtime, example, say, options)
    return backbone, pre


#: what converting to a runtime does first, in words (``say`` before it starts)
_CONVERTING = {
    "onnxruntime": "exporting to ONNX for --runtime onnxruntime",
    "jax": "lowering to JAX for --runtime jax",
    "auto": "choosing the fastest runtime for --runtime auto (a first build exports to ONNX, "
    "lowers to JAX, checks and times each",
}


def _convert(
    backbone: Any,
    runtime: str,
    example: Any,
    say: Callable[[str], None] | None,
    options: Mapping[str, Any],
) -> Any:
    """Serve the module just built with ``runtime`` (what ``build(runtime=...)`` does after
    loading it again), after one forward on ``example``: a backbone that cannot take it fails
    as one line naming the size, not as a trace from inside the export."""
    import torch

    from ..runtimes.table import runtime_module

    convert = runtime_module(runtime).convert
    with torch.inference_mode():
        run_forward(backbone, example)
    if say is not None and backbone.framework == "torch":  # another's is served as built
        doing = _CONVERTING.get(runtime, f"converting for --runtime {runtime}")
        first = "; " if runtime == "auto" else " (a first build of a backbone takes a while; "
        say(f"{doing}{first}the result is cached) ...")
    served = convert(backbone, example, **options)
    if say is not None:
        say(f"runtime: {runtime_line(runtime, served.info or {})}")
    return served


def runtime_line(runtime: str, info: Mapping[str, Any]) -> str:
    """What ran the conversion said in one line: the runtime and its cache outcome, or auto's
    choice, why, and what it skipped."""
    from ..runtimes import auto

    chosen = auto.summary(info)
    if chosen is None:
        return f"{runtime}, {_cache_outcome(info)}"
    record = info["auto"]
    skipped = record.get("skipped") or {}
    where = auto.choice_path(info)
    measured = auto.timings(info)
    parts = [chosen] if measured is None else [f"{chosen} ({measured})"]
    if skipped:
        parts.append("skipped " + "; ".join(f"{k} ({v})" for k, v in sorted(skipped.items())))
    if where is not None:
        parts.append(f"choice cached in {where.parent}")
    return "; ".join(parts)


def _cache_outcome(info: Any) -> str:
    """``cache hit (path)``, ``converted and cached (path)`` or ``not cached (why)``."""
    cache = str(info.get("cache", ""))
    path = info.get("jax_path") or info.get("onnx_path") or "the cache"
    if cache == "hit":
        return f"read from the cache ({path})"
    if cache == "miss":
        return f"converted and cached ({path})"
    return f"converted, not cached ({cache or 'no cache'})"


def resolve_preprocess(
    adapter: Any,
    *,
    image_size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Preprocess:
    """The backbone's own preprocessing where known, else ImageNet defaults at 224.

    Reads ``adapter.info["preprocess"]``: a `Preprocess` the source filled in at build time
    (timm's data config, a HuggingFace ``preprocessor_config.json``, an ONNX input shape; see
    ``adapters/_src/sources/``), or a mapping of `Preprocess` fields a user's builder gave.
    ``image_size``, ``mean`` and ``std`` (the ``--image-size``, ``--mean``, ``--std`` flags)
    override what was found.
    """
    pre = _from_info(adapter)
    if pre is None:
        pre = Preprocess(size=(224, 224), origin="ImageNet defaults")
    if image_size is not None:
        if not 1 <= image_size <= MAX_SIDE:
            raise EmbedError(
                f"--image-size: expected an integer from 1 to {MAX_SIDE}, got {image_size}"
            )
        pre = attrs.evolve(
            pre, size=(image_size, image_size), origin=pre.origin + " + --image-size"
        )
    for flag, value in (("mean", mean), ("std", std)):
        if value is None:
            continue
        value = tuple(float(v) for v in value)
        bad = not all(math.isfinite(v) and (flag == "mean" or v > 0) for v in value)
        if len(value) not in (1, pre.channels) or bad:
            raise EmbedError(
                f"--{flag}: expected 1 or {pre.channels} finite numbers (one per channel)"
                f"{', all > 0' if flag == 'std' else ''}, got {list(value)}"
            )
        value = value * pre.channels if len(value) == 1 else value
        pre = attrs.evolve(pre, **{flag: value}, origin=pre.origin + f" + --{flag}")
    return pre


def _from_info(adapter: Any) -> Preprocess | None:
    info = getattr(adapter, "info", None) or {}
    given = info.get("preprocess") if isinstance(info, Mapping) else None
    if isinstance(given, Preprocess):
        return given
    if not isinstance(given, Mapping):
        return None
    fields = {f.name for f in attrs.fields(Preprocess)}
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in given.items() if k in fields}
    kwargs.setdefault("origin", "adapter info")
    kwargs.setdefault("size", (224, 224))
    try:
        return Preprocess(**kwargs)
    except PreprocessError as err:
        raise EmbedError(
            f"the backbone's info['preprocess'] (from its source's builder) is not valid "
            f"preprocessing: {err}; fix what the builder puts there"
        ) from None
