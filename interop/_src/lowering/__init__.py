"""Lowering torch modules into pure JAX functions through torch.export and core ATen."""
