"""ONNX graphs lowered to JAX: an interpreter over ``jax.numpy`` / ``lax`` and an op table by
family, beside the torch lowering (``interop/_src/lowering``) whose JAX functions it calls where
an ONNX op and an ATen op mean the same thing. See ``README.md`` here."""
