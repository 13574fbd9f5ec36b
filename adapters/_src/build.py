"""`build(spec)`: any spec (record, registry name, or dict) to an `Adapter`.

`build` only dispatches: the argument becomes a spec record (`as_spec`), the device a canonical
name (``adapters/_src/devices.py``), the record goes to its source (the source table,
``adapters/_src/sources/table.py``) and the adapter to its runtime (the runtime table,
``adapters/_src/runtimes/table.py``). Output transforms of the spec are applied inside
``forward``.
"""

from __future__ import annotations

from typing import Any

from .adapter import Adapter
from .devices import normalize_device
from .errors import BuildError
from .runtimes.table import runtime_module
from .seeding import check_seed, with_seed
from .sources.table import as_spec, dispatch


def build(
    spec: Any,
    *,
    runtime: str = "torch",
    example_input: Any = None,
    device: Any = None,
    seed: int | None = None,
    train: bool = False,
) -> Adapter:
    """Build a backbone adapter: a pure ``forward(params, x)`` plus its ``params``.

    Args:
        spec: a spec record (``specs.TimmSpec(...)``, ...), a registry name
            (``"universal/vit_small_patch16_224_random"``, ``"timm/resnet18"``), or a dict
            in the ``specs`` format (``{"source": "timm", "model_name": ...}``).
        runtime: ``"torch"`` runs the model as loaded; ``"onnxruntime"`` exports a torch
            backbone to ONNX and serves it with ONNX Runtime; ``"jax"`` lowers a torch
            backbone into a pure JAX function (`adapters.lower_to_jax`).
        example_input: the input traced by the ONNX export or the JAX lowering;
            default: zeros of the model's known input shape (``adapter.info["input_shape"]``).
        device: where the backbone runs: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a
            ``torch.device``; None (the default) leaves it where the source puts it (the CPU
            for every built-in source). A torch module and its params move there once, here;
            ``forward`` then expects inputs on that device and raises a ``ValueError`` naming
            the argument otherwise (it does not copy them over, see
            ``adapters/_src/torch_module.py``). Flax params are committed to the matching JAX
            device (``jax.devices("gpu")[N]`` for ``cuda:N``). An ONNX spec keeps its own
            ``device`` field; the argument may only repeat it. ``runtime="onnxruntime"``
            serves on the CPU.
        seed: the seed of whatever the source makes at random (a model without pretrained
            weights, layers a checkpoint does not cover), in ``[0, 2**32)``; None (the
            default) takes the spec's own ``seed`` field, which defaults to 0, so two builds
            of one spec have the same weights. torch's generator is seeded while the source
            builds and restored afterwards (the caller's random stream is unchanged); a Flax
            source takes its init key from it. A given seed replaces the spec's, and
            ``adapter.spec.seed`` records it.
        train: with ``runtime="jax"``, lower the backbone's train mode: ``forward(params, x,
            *, key=None) -> (y, new_buffers)`` (dropout drawing from the ``jax.random`` key,
            batch norm on batch statistics, its updated running statistics in
            ``new_buffers``; see `adapters.lower_to_jax`).

    Returns:
        An `Adapter`; ``adapter(x)`` is ``adapter.forward(adapter.params, x)``. For torch
        sources ``x`` is a ``(batch, channels, height, width)`` tensor on the adapter's
        device (``adapter.info["device"]``) and the output is what the model returns, passed
        through the spec's ``transforms`` (e.g. ``(batch, dim)`` CLS features).

    Raises:
        BuildError: the spec cannot be built, ``seed`` is not a seed, ``train`` is not a bool
            or is asked of a runtime other than ``"jax"``, or ``device`` is invalid,
            unavailable (CUDA without a GPU) or conflicts with an ONNX spec; the message
            names the field at fault.
        specs.SpecError: a dict spec is invalid.

    Example:
        >>> backbone = adapters.build(specs.TimmSpec("vit_tiny_patch16_224", pretrained=False))
        >>> features = backbone(torch.randn(2, 3, 224, 224))   # (2, 192)
        >>> other = adapters.build(backbone.spec, seed=1)       # other random weights
        >>> on_gpu = adapters.build("timm/resnet18", device="cuda")
        >>> features = on_gpu(images.cuda(non_blocking=True))
        >>> step = adapters.build("timm/resnet18", runtime="jax", train=True)
        >>> y, new_buffers = step.forward(step.params, x, key=jax.random.key(0))
    """
    run = runtime_module(runtime)
    device = normalize_device(device)
    run.check_device(device)
    check_seed(seed)
    _check_train(train, runtime)
    spec = with_seed(as_spec(spec), seed)
    adapter = dispatch(spec, device, seed=seed)
    # train is the jax runtime's option (its convert's **options); the others take none
    return (
        run.convert(adapter, example_input, train=True)
        if train
        else run.convert(adapter, example_input)
    )


def _check_train(train: Any, runtime: str) -> None:
    if not isinstance(train, bool):
        raise BuildError("train", "must be a bool", expected="True or False", got=train)
    if train and runtime != "jax":
        raise BuildError(
            "train",
            f"train mode is lowered by runtime='jax' (a JAX train step); runtime={runtime!r} "
            "serves the model in eval mode",
            fix="Pass runtime='jax' with train=True, or train the torch module itself "
            "(adapter.module.train())",
        )
