"""`FlaxSpec`: a Flax linen module applied with ``module.apply``: the JAX-native source.

Params come from ``checkpoint_path`` (a msgpack file written by ``flax.serialization.to_bytes``
or a ``.safetensors`` file with ``/``-joined keys) or are initialised from ``seed`` on zeros
of ``input_shape``. ``forward(params, x) = module.apply(params, x)`` is jit-able.

``device`` (``"cpu"``, ``"cuda"``, ``"cuda:N"``) commits the params to the matching JAX device
(``jax.devices("gpu")[N]``); JAX then runs ``forward`` there and moves uncommitted inputs
(NumPy, host arrays) to it itself.

Precision. Flax says it with two module fields, ``dtype`` (compute) and ``param_dtype``
(storage): a low ``precision`` sets both (``-mixed``: float32 params, low compute; ``-true``:
both low; random params are drawn in float32 and cast, like a restored checkpoint) and refuses a module without them, or ``init_args``
that set them too; floating outputs come back in the compute dtype, as on every runtime.
"""

from __future__ import annotations

from typing import Any

import specs

from .. import checkpoint
from ..adapter import Adapter
from ..devices import jax_device, jax_device_name
from ..errors import BuildError
from ..imports import call_with, import_object
from ..precision import policy, precision_of
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


def _precision_args(cls: Any, spec: specs.FlaxSpec) -> dict[str, Any]:
    """The ``dtype`` / ``param_dtype`` arguments of ``spec.precision`` (none at float32)."""
    import jax.numpy as jnp

    pol = policy(precision_of(spec))
    if not pol.low:
        return {}
    fields = getattr(cls, "__dataclass_fields__", {})
    missing = [f for f in ("dtype", "param_dtype") if f not in fields]
    if missing:
        raise BuildError(
            "precision",
            f"{spec.module!r} has no {' or '.join(missing)} field, so it cannot be told to "
            f"run at {pol.name}",
            fix="Give the module Flax's 'dtype' and 'param_dtype' fields and pass them to its "
            "layers, or build it at 32-true",
        )
    both = sorted({"dtype", "param_dtype"} & set(spec.init_args))
    if both:
        raise BuildError(
            "precision",
            f"{pol.name} sets the module's dtype and param_dtype, and init_args set "
            f"{' and '.join(both)} too",
            fix="Set the precision in one place: remove them from init_args",
        )
    return {"dtype": jnp.dtype(pol.compute), "param_dtype": jnp.dtype(pol.storage)}


def _cast_floats(tree: Any, dtype: str) -> Any:
    import jax
    import jax.numpy as jnp

    def cast(a: Any) -> Any:
        floating = jnp.issubdtype(getattr(a, "dtype", None) or jnp.int32, jnp.floating)
        return a.astype(dtype) if floating else a

    return jax.tree_util.tree_map(cast, tree)


def build_flax(spec: specs.FlaxSpec, *, device: str | None = None) -> Adapter:
    """Import the module class, instantiate it with ``init_args``, init or restore params,
    commit them to ``device`` (None: JAX's default device, uncommitted)."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    target = jax_device(device) if device is not None else None

    cls = import_object(spec.module, "module")
    pol = policy(precision_of(spec))
    args = {**spec.init_args, **_precision_args(cls, spec)}
    module = call_with(cls, args, "init_args", spec.module)
    if not isinstance(module, nn.Module):
        raise BuildError(
            "module",
            f"{spec.module!r} built a {type(module).__name__}, not a flax.linen.Module",
        )
    try:
        # drawn in float32 and then cast, so a seed gives the same weights at every precision
        init = module.clone(param_dtype=jnp.float32) if pol.low else module
        params = init.init(jax.random.PRNGKey(spec.seed), jnp.zeros(spec.input_shape))
    except Exception as err:
        raise BuildError(
            "input_shape",
            f"initialising {spec.module!r} on zeros of shape {spec.input_shape} failed: {err}",
            fix="Set input_shape to a shape the module accepts",
        ) from err
    if spec.checkpoint_path:
        params = _restore(params, spec)
    params = _cast_floats(params, pol.storage) if pol.low else params
    if target is not None:
        params = jax.device_put(params, target)
    post = output_transform(spec)
    apply = module.apply

    def forward(p: Any, x: Any) -> Any:
        y = apply(p, x)
        y = y if post is None else post(y)
        return _cast_floats(y, pol.compute) if pol.low else y

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
