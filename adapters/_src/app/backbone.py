"""The backbone of a command: ``SPEC`` (a spec file, an ``.onnx`` model or a registry name)
-> spec record -> device -> built adapter (+ runtime) and its preprocessing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..devices import device_kind
from .parser import prog_name

SPEC_SUFFIXES = (".yaml", ".yml", ".json", ".onnx")


class CliError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


def resolve_spec(arg: str, device: str | None = None) -> Any:
    """A spec file (ours, eva's, or an .onnx model) or a registry name -> a spec record.

    A bare ``.onnx`` file runs on ``device``'s kind (``cpu`` or ``cuda``; default ``cpu``).
    """
    import specs

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
    import difflib

    import timm

    from ..registry import TIMM_PREFIX, list_models

    own = list_models(include_timm=False)
    bare = name.removeprefix(TIMM_PREFIX)
    if name in own or (name.startswith(TIMM_PREFIX) and timm.is_model(bare)):
        return
    close = [TIMM_PREFIX + bare] if timm.is_model(bare) else []  # timm's own name, unprefixed
    close += difflib.get_close_matches(name, own, n=3, cutoff=0.4)
    close += difflib.get_close_matches(TIMM_PREFIX + bare, list_models(f"{TIMM_PREFIX}*"), n=3)
    hint = f"did you mean {', '.join(dict.fromkeys(close))}? " if close else ""
    raise CliError(
        f"SPEC: unknown registry name {name!r} (and not a file); {hint}run '{prog_name()} list' "
        "for the project's names, or a spec file path"
    )


def _is_onnx(spec: Any) -> bool:
    import specs

    if isinstance(spec, specs.RegistrySpec):
        from ..registry import registry_spec

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
    if runtime != "torch" or _is_onnx(spec):
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
) -> tuple[Any, Any]:
    """Build the backbone named by ``arg`` (what `resolve_spec` takes, or a spec record) on
    ``device`` (see `choose_device`); returns it with its resolved `Preprocess`. ``seed``
    replaces the spec's own seed of random weights (None: the spec's, default 0).

    With ``runtime="onnxruntime"`` or ``"jax"`` the torch backbone is built first to learn its
    input (size, channels), which is the example the ONNX export (or the JAX lowering) traces;
    that backbone is then served. ``say`` (the CLI: print) is told when that conversion starts
    and how it went (a first one takes a while and is cached).

    Raises:
        ForwardError: with a runtime other than torch, the backbone cannot take the example
            input (checked with one forward before the conversion traces it).
    """
    import torch

    from ..build import build
    from .preprocessing import resolve_preprocess

    spec = resolve_spec(arg, device) if isinstance(arg, str) else arg
    device = choose_device(spec, runtime, device)
    if runtime != "torch" and device is not None and device_kind(device) != "cpu":
        raise CliError(
            f"--device: --runtime {runtime} serves the backbone on the CPU, got --device "
            f"{device}; drop --device, or use --runtime torch to run on {device}"
        )
    backbone = build(spec, device=device, seed=seed)
    pre = resolve_preprocess(backbone, image_size=image_size, mean=mean, std=std)
    if runtime != "torch":
        backbone = _convert(backbone, runtime, torch.zeros(1, pre.channels, *pre.size), say)
    return backbone, pre


#: what converting to a runtime does first, in words (``say`` before it starts)
_CONVERTING = {
    "onnxruntime": "exporting to ONNX for --runtime onnxruntime",
    "jax": "lowering to JAX for --runtime jax",
}


def _convert(backbone: Any, runtime: str, example: Any, say: Callable[[str], None] | None) -> Any:
    """Serve the module just built with ``runtime`` (what ``build(runtime=...)`` does after
    loading it again), after one forward on ``example``: a backbone that cannot take it fails
    as one line naming the size, not as a trace from inside the export."""
    import torch

    from ..runtimes.table import runtime_module
    from .embed import run_forward

    convert = runtime_module(runtime).convert
    with torch.inference_mode():
        run_forward(backbone, example)
    if say is not None:
        doing = _CONVERTING.get(runtime, f"converting for --runtime {runtime}")
        say(f"{doing} (a first build of a backbone takes a while; the result is cached) ...")
    served = convert(backbone, example)
    if say is not None:
        say(f"runtime: {runtime}, {_cache_outcome(served.info or {})}")
    return served


def _cache_outcome(info: Any) -> str:
    """``cache hit (path)``, ``converted and cached (path)`` or ``not cached (why)``."""
    cache = str(info.get("cache", ""))
    path = info.get("jax_path") or info.get("onnx_path") or "the cache"
    if cache == "hit":
        return f"read from the cache ({path})"
    if cache == "miss":
        return f"converted and cached ({path})"
    return f"converted, not cached ({cache or 'no cache'})"
