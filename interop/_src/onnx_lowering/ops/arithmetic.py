"""Elementwise arithmetic, comparisons and logic, with ONNX's broadcasting (NumPy's).

The binary ops fold in NumPy when both sides are known (shape arithmetic: a symbolic batch size
times a number); integer division truncates toward zero as ONNX's does."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from interop._src.onnx_lowering.ops._common import is_int
from interop._src.onnx_lowering.registry import onnx_op


@onnx_op("Add", fold="numpy")
def add(node, a, b):
    return a + b


@onnx_op("Sub", fold="numpy")
def sub(node, a, b):
    return a - b


@onnx_op("Mul", fold="numpy")
def mul(node, a, b):
    return a * b


@onnx_op("Div", fold="numpy")
def div(node, a, b):
    if a.dtype == object or b.dtype == object:
        return a // b  # shape arithmetic with a symbolic (positive) size
    if is_int(a):
        if node.xp is np:
            return (np.trunc(a / b)).astype(a.dtype)
        return lax.div(a, jnp.asarray(b, a.dtype))
    return a / b


@onnx_op("Mod", fmod=0)
def mod(node, a, b):
    return jnp.fmod(a, b) if node["fmod"] else jnp.remainder(a, b)


@onnx_op("Pow")
def pow_(node, x, y):
    if is_int(x) and not is_int(y):
        return jnp.power(x.astype(y.dtype), y).astype(x.dtype)
    return jnp.power(x, y.astype(x.dtype))


def _unary(name, fn):
    onnx_op(name)(lambda node, x: fn(x))


for _name, _fn in {
    "Neg": jnp.negative,
    "Abs": jnp.abs,
    "Sqrt": jnp.sqrt,
    "Exp": jnp.exp,
    "Log": jnp.log,
    "Reciprocal": jnp.reciprocal,
    "Floor": jnp.floor,
    "Ceil": jnp.ceil,
    "Round": jnp.round,
    "Sign": jnp.sign,
    "Erf": lax.erf,
    "Tanh": jnp.tanh,
    "Sin": jnp.sin,
    "Cos": jnp.cos,
    "Tan": jnp.tan,
    "Asin": jnp.arcsin,
    "Acos": jnp.arccos,
    "Atan": jnp.arctan,
    "Sinh": jnp.sinh,
    "Cosh": jnp.cosh,
    "Asinh": jnp.arcsinh,
    "Acosh": jnp.arccosh,
    "Atanh": jnp.arctanh,
    "Not": jnp.logical_not,
    "IsNaN": jnp.isnan,
}.items():
    _unary(_name, _fn)


@onnx_op("IsInf", detect_negative=1, detect_positive=1)
def isinf(node, x):
    pos = (x == jnp.inf) if node["detect_positive"] else jnp.zeros(x.shape, bool)
    neg = (x == -jnp.inf) if node["detect_negative"] else jnp.zeros(x.shape, bool)
    return pos | neg


def _binary(name, fn):
    onnx_op(name, fold="numpy")(lambda node, a, b: fn(node.xp)(a, b))


for _name, _fn in {
    "Equal": lambda xp: xp.equal,
    "Less": lambda xp: xp.less,
    "Greater": lambda xp: xp.greater,
    "LessOrEqual": lambda xp: xp.less_equal,
    "GreaterOrEqual": lambda xp: xp.greater_equal,
    "And": lambda xp: xp.logical_and,
    "Or": lambda xp: xp.logical_or,
    "Xor": lambda xp: xp.logical_xor,
}.items():
    _binary(_name, _fn)


@onnx_op("Where", fold="numpy")
def where(node, cond, a, b):
    return node.xp.where(cond, a, b)


def _variadic(name, fn):
    def run(node, *xs):
        out = xs[0]
        for x in xs[1:]:
            out = fn(out, x)
        return out

    onnx_op(name)(run)


_variadic("Max", jnp.maximum)
_variadic("Min", jnp.minimum)
_variadic("Sum", jnp.add)


@onnx_op("Mean")
def mean(node, *xs):
    return sum(xs[1:], xs[0]) / len(xs)


@onnx_op("Clip")
def clip(node, x, lo=None, hi=None):
    if lo is not None:
        x = jnp.maximum(x, lo)
    if hi is not None:
        x = jnp.minimum(x, hi)
    return x
