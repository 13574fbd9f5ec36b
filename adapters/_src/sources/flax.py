"""`FlaxSpec`: a Flax linen module applied with ``module.apply``: the JAX-native source.

Params come from ``checkpoint_path`` (a msgpack file written by ``flax.serialization.to_bytes``
or a ``.safetensors`` file with ``/``-joined keys) or are initialised from ``seed`` on zeros
of ``input_shape``. ``forward(params, x) = module.apply(params, x)`` is jit-able.

``device`` (``"cpu"``, ``"cuda"``, ``"cuda:N"``) commits the params to the matching JAX device
(``jax.devices("gpu")[N]``); JAX then runs ``forward`` there and moves uncommitted inputs
(NumPy, host arrays) to it itself.
"""

from __future__ import annotations

from typing import Any

import specs

from .. import checkpoint
from ..adapter import Adapter
from ..devices import jax_device, jax_device_name
from ..errors import BuildError
from ..imports import call_with, import_object
from ..transforms.of_spec import output_transform


def _restore(template: Any, spec: specs.FlaxSpec) -> Any:
    import flax.serialization
    import flax.traverse_util
    import jax
    import numpy as np

    path = spec.checkpoint_path
    data = checkpoint.read_bytes(path)
    if path.lower().endswith(".safetensors"):
        from safetensors.numpy import load as load_safetensors

        flat = load_safetensors(data)
        want = {"/".join(k): v for k, v in flax.traverse_util.flatten_dict(template).items()}
        missing, unexpected = checkpoint.key_mismatch(list(want), flat)
        if missing or unexpected:
            raise BuildError(
                "checkpoint_path",
                f"checkpoint {path!r} does not fit the module: "
                f"{checkpoint.describe_mismatch(missing, unexpected)}",
            )
        bad = [k for k in want if np.shape(want[k]) != flat[k].shape]
        if bad:
            raise BuildError(
                "checkpoint_path",
                f"checkpoint {path!r} has {len(bad)} array(s) of the wrong shape ({bad[0]}: "
                f"{flat[bad[0]].shape} vs {np.shape(want[bad[0]])})",
            )
        nested = flax.traverse_util.unflatten_dict(
            {tuple(k.split("/")): v for k, v in flat.items()}
        )
        return jax.tree_util.tree_map(jax.numpy.asarray, nested)
    try:
        return flax.serialization.from_bytes(template, data)
    except Exception as err:
        raise BuildError(
            "checkpoint_path", f"checkpoint {path!r} does not fit the module: {err}"
        ) from err


def build_flax(spec: specs.FlaxSpec, *, device: str | None = None) -> Adapter:
    """Import the module class, instantiate it with ``init_args``, init or restore params,
    commit them to ``device`` (None: JAX's default device, uncommitted)."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    target = jax_device(device) if device is not None else None

    cls = import_object(spec.module, "module")
    module = call_with(cls, spec.init_args, "init_args", spec.module)
    if not isinstance(module, nn.Module):
        raise BuildError(
            "module",
            f"{spec.module!r} built a {type(module).__name__}, not a flax.linen.Module",
        )
    try:
        params = module.init(jax.random.PRNGKey(spec.seed), jnp.zeros(spec.input_shape))
    except Exception as err:
        raise BuildError(
            "input_shape",
            f"initialising {spec.module!r} on zeros of shape {spec.input_shape} failed: {err}",
            fix="Set input_shape to a shape the module accepts",
        ) from err
    if spec.checkpoint_path:
        params = _restore(params, spec)
    if target is not None:
        params = jax.device_put(params, target)
    post = output_transform(spec)
    apply = module.apply

    def forward(p: Any, x: Any) -> Any:
        y = apply(p, x)
        return y if post is None else post(y)

    return Adapter(
        forward=forward,
        params=params,
        spec=spec,
        framework="jax",
        module=module,
        info={
            "input_shape": spec.input_shape,
            "device": jax_device_name(target or jax.devices()[0]),
        },
    )


# the source's entry points, found by its tag (adapters/_src/sources/table.py)
build = build_flax
