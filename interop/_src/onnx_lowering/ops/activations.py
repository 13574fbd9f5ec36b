"""Activations and the softmaxes; where ATen has the same function, the torch lowering's own
(``interop/_src/lowering/ops/activations.py``) is called, so the two tables agree."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from interop._src.lowering.ops import activations as aten
from interop._src.onnx_lowering.registry import onnx_op


@onnx_op("Relu")
def relu(node, x):
    return aten.relu(x)


@onnx_op("Gelu", approximate="none")
def gelu(node, x):
    return aten.gelu(x, node["approximate"])


@onnx_op("Sigmoid")
def sigmoid(node, x):
    return aten.sigmoid(x)


@onnx_op("HardSigmoid", alpha=0.2, beta=0.5)
def hard_sigmoid(node, x):
    return jnp.clip(node["alpha"] * x + node["beta"], 0, 1).astype(x.dtype)


@onnx_op("HardSwish")
def hard_swish(node, x):
    return aten.hardswish(x)


@onnx_op("LeakyRelu", alpha=0.01)
def leaky_relu(node, x):
    return aten.leaky_relu(x, node["alpha"])


@onnx_op("Elu", alpha=1.0)
def elu(node, x):
    return aten.elu(x, node["alpha"])


@onnx_op("Selu", alpha=1.67326319217681884765625, gamma=1.05070102214813232421875)
def selu(node, x):
    return node["gamma"] * jnp.where(x > 0, x, node["alpha"] * jnp.expm1(x)).astype(x.dtype)


@onnx_op("Celu", alpha=1.0)
def celu(node, x):
    a = node["alpha"]
    return (jnp.maximum(x, 0) + jnp.minimum(0, a * jnp.expm1(x / a))).astype(x.dtype)


@onnx_op("Softplus")
def softplus(node, x):
    return jax.nn.softplus(x)


@onnx_op("Softsign")
def softsign(node, x):
    return x / (1 + jnp.abs(x))


@onnx_op("Mish")
def mish(node, x):
    return x * jnp.tanh(jax.nn.softplus(x))


@onnx_op("ThresholdedRelu", alpha=1.0)
def thresholded_relu(node, x):
    return jnp.where(x > node["alpha"], x, 0).astype(x.dtype)


@onnx_op("PRelu")
def prelu(node, x, slope):
    return jnp.where(x < 0, slope * x, x).astype(x.dtype)


@onnx_op("Softmax", axis=-1)
def softmax(node, x):
    return aten.softmax(x, node["axis"])


@onnx_op("LogSoftmax", axis=-1)
def log_softmax(node, x):
    return aten.log_softmax(x, node["axis"])


@onnx_op("Hardmax", axis=-1)
def hardmax(node, x):
    axis = node["axis"]
    return jax.nn.one_hot(jnp.argmax(x, axis=axis), x.shape[axis], axis=axis, dtype=x.dtype)
